"""course_utils.widgets outside a kernel: outputs land in the Output widget's state, errors are not swallowed.

Figures (which need IPython's display machinery) and the headless run are checked in tests/test_headless.py.
"""

import base64

import ipywidgets
import pytest
from ipywidgets import IntSlider, fixed

from course_utils.widgets import _json_data, interact, interactive


def report(n=1, scale=1):
    print(f"n = {n}, n * scale = {n * scale}")
    if n == 5:
        raise ValueError("n = 5 is not allowed")
    return n * scale


def test_output_is_written_into_the_output_widget_state():
    w = interactive(report, n=IntSlider(value=2, min=0, max=9), scale=fixed(10))
    assert w.out.outputs == ({"output_type": "stream", "name": "stdout", "text": "n = 2, n * scale = 20\n"},)
    assert w.result == 20 and w.kwargs == {"n": 2, "scale": 10}
    assert w.out.msg_id == ""  # nothing asks a front end to capture messages


def test_moving_the_slider_replaces_the_output():
    w = interactive(report, n=IntSlider(value=2, min=0, max=9), scale=fixed(10))
    w.children[0].value = 3
    assert [o["text"] for o in w.out.outputs] == ["n = 3, n * scale = 30\n"]


def test_first_call_raises_so_a_broken_cell_fails(capsys):
    with pytest.raises(ValueError, match="n = 5"):
        interactive(report, n=IntSlider(value=5, min=0, max=9))
    assert "n = 5, n * scale = 5" in capsys.readouterr().out  # what it printed before failing is shown


def test_later_errors_are_shown_in_the_widget():
    w = interactive(report, n=IntSlider(value=2, min=0, max=9))
    w.children[0].value = 5
    stream, error = w.out.outputs
    assert stream["text"].startswith("n = 5")
    assert error["output_type"] == "error" and error["ename"] == "ValueError"
    assert "n = 5 is not allowed" in "".join(error["traceback"])
    w.children[0].value = 6  # and the widget recovers
    assert w.out.outputs == ({"output_type": "stream", "name": "stdout", "text": "n = 6, n * scale = 6\n"},)


def test_same_abbreviations_as_ipywidgets():
    ours, theirs = interactive(report, n=(0, 8, 2)), ipywidgets.interactive(report, n=(0, 8, 2))
    assert [type(c) for c in ours.children] == [type(c) for c in theirs.children]
    assert (ours.children[0].min, ours.children[0].max, ours.children[0].step) == (0, 8, 2)


def test_interact_returns_the_function_like_ipywidgets(capsys):
    assert interact(report, n=IntSlider(value=1, min=0, max=9)) is report


def test_binary_display_data_is_base64_text():
    png = b"\x89PNG\r\n\x1a\n"
    data = _json_data({"image/png": png, "text/plain": "<Figure>"})
    assert data == {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": "<Figure>"}
