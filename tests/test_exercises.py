"""course_utils.exercises: verdicts, tolerances, hints that grow, function answers, and the registry."""

import pytest
import torch

from course_utils import exercises as ex
from course_utils.exercises import check, compare_values, exercise, get_exercise, judge


@pytest.fixture
def demo(monkeypatch):
    """Two throw-away exercises in notebook "99" (not a real notebook)."""
    monkeypatch.setattr(ex, "REGISTRY", {})
    monkeypatch.setattr(ex, "_wrong_tries", ex.Counter())
    exercise("99.1", title="Double it", kind="transcription", hints=("first nudge", "second nudge"))(lambda x: 2 * x)
    exercise(
        "99.2", title="Write square", kind="debug", calls=lambda: [((torch.tensor([1.0, -2.0]),), {}), ((3.0,), {})]
    )(lambda x: x * x)


def test_verdicts_print_one_line(demo, capsys):
    assert check("99.1", None, x=2.0) is None
    assert "[99.1 Double it] not attempted yet" in capsys.readouterr().out
    check("99.1", 4.0, x=2.0)
    assert capsys.readouterr().out == "[99.1 Double it] correct.\n"
    check("99.1", 5.0, x=2.0)
    out = capsys.readouterr().out
    assert out.startswith("[99.1 Double it] not yet right: largest difference") and out.count("\n") == 1


def test_hints_grow_with_wrong_tries(demo, capsys):
    for expected_hint in ("first nudge", "second nudge", "second nudge"):
        check("99.1", 0.0, x=2.0)
        assert capsys.readouterr().out.endswith(f"Hint: {expected_hint}\n")


def test_judge_returns_the_verdict(demo):
    assert judge("99.1", torch.tensor([2.0, 4.0]), x=torch.tensor([1.0, 2.0])) == (True, "")
    assert judge("99.1", ..., x=1.0) == (None, "")
    correct, why = judge("99.1", torch.zeros(3), x=torch.zeros(2))
    assert correct is False and "expected shape (2,)" in why


def test_function_answers_are_called_on_every_case(demo):
    assert judge("99.2", lambda x: x**2)[0] is True
    correct, why = judge("99.2", lambda x: x.abs() * x)  # right for positives only
    assert correct is False and "tensor of shape (2,)" in why
    correct, why = judge("99.2", lambda x: x.pow(2))  # floats have no .pow: the student's error is reported
    assert correct is False and "raised AttributeError" in why
    assert judge("99.2", 4.0) == (False, "expected a function, got float")


@pytest.mark.parametrize(
    "answer, expected, ok",
    [
        (0.1 + 0.2, 0.3, True),
        ([1.0, 2.0], torch.tensor([1.0, 2.0]), True),
        ("relu", "relu", True),
        (0.31, 0.3, False),
        ("sigmoid", "relu", False),
        ("abc", 1.0, False),
        (True, 1.0, False),
        (torch.tensor([float("nan")]), torch.tensor([0.0]), False),
        (torch.tensor([True]), torch.tensor([1.0]), False),
    ],
)
def test_compare_values(answer, expected, ok):
    assert compare_values(answer, expected)[0] is ok


def test_tolerances():
    assert compare_values(1.001, 1.0, atol=1e-2)[0]
    assert not compare_values(1.001, 1.0, atol=1e-6, rtol=0.0)[0]


def test_registry_errors(demo):
    with pytest.raises(KeyError, match="no exercise '99.7'.*'99.1', '99.2'"):
        get_exercise("99.7")
    with pytest.raises(ValueError, match="looks like '05.1'"):
        get_exercise("5-1")
    with pytest.raises(ValueError, match="kind must be one of"):
        exercise("99.3", title="t", kind="quiz")
    with pytest.raises(ValueError, match="registered twice"):
        exercise("99.1", title="again", kind="predict")(lambda: 0)


def test_real_registry_loads_and_is_well_formed():
    first = get_exercise("05.1")
    assert first.kind in ex.KINDS and first.hints
    for exercise_ in ex.exercises_of("05"):
        assert exercise_.title and len(exercise_.hints) >= 1, exercise_.id
