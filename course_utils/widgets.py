"""``interact`` for the notebooks: sliders that redraw a figure, and never hang a headless run.

``ipywidgets.interact`` draws into an ``Output`` widget by asking the *front end* to capture the
kernel's messages (``with out: ...`` sets the widget's ``msg_id``). A headless executor has no
browser, so nbclient (behind ``jupyter nbconvert --execute``) mimics that front end, and its mimic
sends the captured outputs back to the kernel on the shell socket while the same client is
awaiting the cell's ``execute_reply`` on that socket. The send goes through a blocking shadow of
the asyncio socket (``jupyter_client.Session.send``), which can swallow ZeroMQ's edge-triggered
"message waiting" signal: when the reply arrives just before the send, the client's poll is
never woken and the run hangs forever with an idle kernel (jupyter/nbclient#312,
jupyter/nbconvert#1921, #2003, #2029). ``tests/test_headless.py`` shows the mechanism.

The ``interactive`` here is ``ipywidgets.interactive`` with one change: the kernel renders the
function's output itself and stores it in the ``Output`` widget's ``outputs`` state, so no front
end, real or mimicked, ever captures anything or sends anything back. JupyterLab redraws the
figure from that state whenever a slider moves.
"""

from __future__ import annotations

import base64
import traceback
from typing import Any, Callable

import ipywidgets
from IPython import get_ipython
from IPython.display import display
from IPython.utils.capture import capture_output
from ipywidgets.widgets.interaction import show_inline_matplotlib_plots

__all__ = ["interact", "interactive"]


def _json_data(data: dict[str, Any]) -> dict[str, Any]:
    """A display mimebundle as JSON-ready data: binary values (PNG, JPEG) base64-encoded, like a kernel sends them."""
    return {mime: base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
            for mime, value in data.items()}


def _error_output(error: BaseException) -> dict[str, Any]:
    """An nbformat ``error`` output for ``error`` (an IPython-formatted traceback when in IPython)."""
    shell = get_ipython()
    if shell is not None:
        lines = shell.InteractiveTB.structured_traceback(type(error), error, error.__traceback__)
    else:
        lines = traceback.format_exception(error)
    return {"output_type": "error", "ename": type(error).__name__, "evalue": str(error), "traceback": list(lines)}


class interactive(ipywidgets.interactive):  # noqa: N801 (mirrors the ipywidgets name)
    """``ipywidgets.interactive`` whose output the kernel writes into ``self.out.outputs``.

    Same arguments as ``ipywidgets.interactive(function, **controls)``: a widget, or an abbreviation
    such as ``(0.0, 1.0)``, or ``ipywidgets.fixed(value)`` per argument of ``function``. The output
    of each call (printed text, then rich displays such as matplotlib figures, then stderr) replaces
    the previous one in one state update.

    Errors: the first call runs while the cell executes and raises, so a broken function fails the
    cell (and the tests) instead of printing a traceback into a widget nobody looks at; later calls,
    made when a slider moves, show the traceback in the output area.
    """

    _ran = False  # set on the first call, which runs inside the cell that builds the widget

    def update(self, *args: Any) -> None:
        """Call the function with the controls' values and store its output (ignores ``args``)."""
        raise_errors = not self._ran and not self.manual
        self._ran = True
        if self.manual:
            self.manual_button.disabled = True
        try:
            show_inline_matplotlib_plots()  # figures left open before the call belong to the cell, not the widget
            self.kwargs = {widget._kwarg: widget.get_interact_value() for widget in self.kwargs_widgets}
            error = None
            with capture_output() as captured:
                try:
                    self.result = self.f(**self.kwargs)
                    show_inline_matplotlib_plots()  # inline figures the function drew but did not show
                    if self.auto_display and self.result is not None:
                        display(self.result)
                except Exception as caught:  # noqa: BLE001 (shown to the user below or re-raised)
                    error = caught
            if error is not None and raise_errors:
                captured.show()  # what the function printed or drew before it failed, above the traceback
                raise error
            self.out.outputs = tuple(self._outputs(captured, error))
        finally:
            if self.manual:
                self.manual_button.disabled = False

    @staticmethod
    def _outputs(captured: Any, error: BaseException | None) -> list[dict[str, Any]]:
        outputs: list[dict[str, Any]] = []
        if captured.stdout:
            outputs.append({"output_type": "stream", "name": "stdout", "text": captured.stdout})
        for rich in captured.outputs:
            outputs.append({"output_type": "display_data", "data": _json_data(rich.data),
                            "metadata": dict(rich.metadata or {})})
        if captured.stderr:
            outputs.append({"output_type": "stream", "name": "stderr", "text": captured.stderr})
        if error is not None:
            outputs.append(_error_output(error))
        return outputs


def interact(function: Callable[..., Any], /, **controls: Any) -> Callable[..., Any]:
    """Display controls for ``function``'s arguments above its output; redraw when a control moves.

    A drop-in for ``ipywidgets.interact(function, **controls)`` (same abbreviations, same return
    value: ``function``) that headless executors run without hanging; see the module docstring.
    Use ``interactive`` instead to get the widget object (``.children``, ``.out``, ``.result``).
    """
    widget = interactive(function, **controls)
    display(widget)
    return function

