"""Self-checking exercises whose answers are nowhere in the student's notebook.

An exercise cell in a notebook leaves a placeholder for the student and ends with one call::

    answer = None  # your code here
    check("05.1", answer, q=q1, k=k1, v=v1)

``"05.1"`` is the exercise's id (notebook 05, exercise 1). Its entry in the registry holds a
*reference* function that computes the expected value from the inputs the cell passes, by an
independent route (a library function, a closed form, a different algorithm), plus the hints. The
references live in ``course_utils.exercise_bank.nb05`` and are imported only when a check runs, so no
variable in the notebook holds the answer. The worked solutions teachers see are in ``solutions/``
(``make teacher`` builds the teacher edition with them inline).

A check prints one line and returns True only when the answer is right. It never raises for a wrong or
missing answer, so a notebook run top to bottom keeps going. A first wrong try prints the first hint (a
nudge: which formula, which shape, which function to look up); later tries print the next, stronger one.
"""

from __future__ import annotations

import importlib
import inspect
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from .checks import expect_callable, expect_number

Kind = Literal["transcription", "understanding", "predict", "debug"]
KINDS: tuple[str, ...] = ("transcription", "understanding", "predict", "debug")
Comparison = Callable[[Any, Any], tuple[bool, str]]  # (answer, expected) -> (correct, why not)
Calls = Callable[..., Iterable[tuple[tuple, dict]]]  # inputs -> the (args, kwargs) to call a function answer with


@dataclass(frozen=True)
class Exercise:
    """One registered exercise.

    Attributes:
        id: ``"NN.K"`` (``"01b.2"`` for a companion notebook): notebook number and exercise number.
        title: a few words, printed in every verdict.
        kind: ``"transcription"`` (turn a formula into code), ``"understanding"`` (reason about a result),
            ``"predict"`` (predict a number, then verify it by running), ``"debug"`` (find and fix a bug).
        reference: computes the expected value from the keyword inputs the notebook's check passes.
        hints: shown after the first, second, ... wrong try (the last one repeats).
        atol, rtol: tolerances for numeric answers (``torch.allclose`` semantics, in float64 on the CPU).
        calls: for answers that are *functions*: yields ``(args, kwargs)`` pairs; the student's function
            and ``reference`` are both called on each, and their results compared.
        compare: replaces the numeric/equality comparison, returning ``(correct, reason)``.
    """

    id: str
    title: str
    kind: Kind
    reference: Callable[..., Any]
    hints: tuple[str, ...] = ()
    atol: float = 1e-6
    rtol: float = 1e-5
    calls: Calls | None = None
    compare: Comparison | None = None

    @property
    def label(self) -> str:
        """``"[05.1 Causal attention by slicing]"``: the prefix of every message about this exercise."""
        return f"[{self.id} {self.title}]"


REGISTRY: dict[str, Exercise] = {}
_wrong_tries: Counter[str] = Counter()


def _notebook_of(exercise_id: str) -> str:
    if not isinstance(exercise_id, str):
        raise TypeError(
            f"exercise id must be a string such as '05.1', got {exercise_id!r} ({type(exercise_id).__name__})"
        )
    number, dot, index = exercise_id.partition(".")
    if not dot or not index.isdigit() or not (number[:2].isdigit() and len(number) in (2, 3)):
        raise ValueError(f"an exercise id looks like '05.1' or '01b.2' (notebook.exercise), got {exercise_id!r}")
    return number


def exercise(
    exercise_id: str,
    *,
    title: str,
    kind: Kind,
    hints: Iterable[str] = (),
    atol: float = 1e-6,
    rtol: float = 1e-5,
    calls: Calls | None = None,
    compare: Comparison | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that registers the decorated function as the reference of ``exercise_id``.

    Raises:
        ValueError: a malformed id, an unknown ``kind``, negative tolerances, or an id registered twice.
        TypeError: ``hints`` given as one string (it must be a list of them), ``calls``/``compare`` not callable.
    """
    _notebook_of(exercise_id)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if isinstance(hints, str):
        raise TypeError(f"hints must be a list of strings (one per wrong try), got the single string {hints!r:.60}")
    hints = tuple(hints)
    if not all(isinstance(h, str) for h in hints):
        raise TypeError(f"hints must be a list of strings (one per wrong try), got {hints!r:.60}")
    _check_tolerances(atol, rtol)
    expect_callable(calls, "calls", optional=True)
    expect_callable(compare, "compare", optional=True)

    def register(reference: Callable[..., Any]) -> Callable[..., Any]:
        if exercise_id in REGISTRY and REGISTRY[exercise_id].reference.__qualname__ != reference.__qualname__:
            raise ValueError(f"exercise {exercise_id} is registered twice")
        REGISTRY[exercise_id] = Exercise(exercise_id, title, kind, reference, tuple(hints), atol, rtol, calls, compare)
        return reference

    return register


def get_exercise(exercise_id: str) -> Exercise:
    """The registered exercise ``exercise_id``, importing its notebook's module of references on first use.

    Raises:
        KeyError: no such exercise (the message lists the ids that exist for that notebook).
    """
    notebook = _notebook_of(exercise_id)
    if exercise_id not in REGISTRY:
        try:
            importlib.import_module(f"course_utils.exercise_bank.nb{notebook}")
        except ModuleNotFoundError as err:
            if err.name != f"course_utils.exercise_bank.nb{notebook}":
                raise
    if exercise_id not in REGISTRY:
        known = sorted(k for k in REGISTRY if k.startswith(f"{notebook}."))
        raise KeyError(f"no exercise {exercise_id!r}; notebook {notebook} has {known or 'none registered'}")
    return REGISTRY[exercise_id]


def exercises_of(notebook: str) -> list[Exercise]:
    """Every registered exercise of notebook ``notebook`` (e.g. ``"05"``), in id order.

    Raises:
        TypeError: ``notebook`` is not a string.
        KeyError: the notebook has no exercises.
    """
    if not isinstance(notebook, str):
        raise TypeError(f"notebook must be a string such as '05', got {notebook!r} ({type(notebook).__name__})")
    _notebook_of(f"{notebook}.1")  # the same format as the ids
    module = f"course_utils.exercise_bank.nb{notebook}"
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:
            raise
        raise KeyError(f"notebook {notebook!r} has no exercises (no module {module})") from None
    found = [ex for key, ex in REGISTRY.items() if key.startswith(f"{notebook}.")]
    return sorted(found, key=lambda ex: int(ex.id.partition(".")[2]))


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu")
    return torch.as_tensor(value)


def _check_tolerances(atol: Any, rtol: Any) -> None:
    expect_number(atol, "atol", 0)
    expect_number(rtol, "rtol", 0)


def compare_values(answer: Any, expected: Any, *, atol: float = 1e-6, rtol: float = 1e-5) -> tuple[bool, str]:
    """Compare an answer with the expected value: ``(correct, reason it is not)``.

    Numbers and tensors (and lists of numbers) are compared with ``torch.allclose`` in float64 after
    checking shapes; NaN never matches. Anything else (strings, bools, tuples of names) with ``==``.

    Raises:
        TypeError, ValueError: ``atol`` or ``rtol`` is not a finite number >= 0.
    """
    _check_tolerances(atol, rtol)
    numeric = isinstance(expected, (int, float, torch.Tensor)) and not isinstance(expected, bool)
    if not numeric:
        try:
            return (bool(answer == expected), "" if answer == expected else f"got {answer!r}")
        except Exception as err:  # noqa: BLE001 - a student's object may compare badly
            return False, f"could not compare ({err})"
    if isinstance(answer, bool) or answer is None:
        return False, f"expected a number or tensor, got {answer!r}"
    try:
        got, want = _as_tensor(answer), _as_tensor(expected)
    except (TypeError, ValueError, RuntimeError):
        return False, f"expected a number or tensor, got {type(answer).__name__}"
    if got.shape != want.shape:
        return False, f"expected shape {tuple(want.shape)}, got {tuple(got.shape)}"
    if got.dtype == torch.bool and want.dtype != torch.bool:
        return False, "expected numbers, got booleans"
    if got.is_complex():
        return False, "expected real numbers, got complex ones"
    got64, want64 = got.to(torch.float64), want.to(torch.float64)
    if torch.allclose(got64, want64, atol=atol, rtol=rtol, equal_nan=False):
        return True, ""
    if torch.isnan(got64).any():
        return False, "the answer contains NaN"
    return False, f"largest difference from the expected value is {(got64 - want64).abs().max().item():.3g}"


def _check_inputs(ex: Exercise, inputs: dict[str, Any]) -> None:
    """TypeError naming the inputs the exercise needs when the notebook's check passes others."""
    needs = ex.calls if ex.calls is not None else ex.reference
    try:
        signature = inspect.signature(needs)
    except (TypeError, ValueError):  # a builtin without a signature: let the call say it
        return
    try:
        signature.bind(**inputs)
    except TypeError:
        names = [p.name for p in signature.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        raise TypeError(
            f"exercise {ex.id} needs the inputs {', '.join(names) or 'none'}, passed as "
            f"check({ex.id!r}, answer, name=value, ...); got {sorted(inputs) or 'none'}"
        ) from None


def _judge(ex: Exercise, answer: Any, inputs: dict[str, Any]) -> tuple[bool, str]:
    if ex.calls is None:
        expected = ex.reference(**inputs)
        return (ex.compare or (lambda a, e: compare_values(a, e, atol=ex.atol, rtol=ex.rtol)))(answer, expected)
    if not callable(answer):
        return False, f"expected a function, got {type(answer).__name__}"
    for args, kwargs in ex.calls(**inputs):
        shown = ", ".join([*(_short(a) for a in args), *(f"{k}={_short(v)}" for k, v in kwargs.items())])
        try:
            got = answer(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - report the student's error instead of stopping the notebook
            return False, f"calling it on ({shown}) raised {type(err).__name__}: {err}"
        ok, why = (ex.compare or (lambda a, e: compare_values(a, e, atol=ex.atol, rtol=ex.rtol)))(
            got, ex.reference(*args, **kwargs)
        )
        if not ok:
            return False, f"on ({shown}): {why}"
    return True, ""


def _short(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}"
    if isinstance(value, torch.nn.Module):  # its repr spans lines: the verdict must stay on one line
        return type(value).__name__
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
        return f"{type(value).__name__} of {len(value)} tensors"
    text = " ".join(repr(value).split())
    return text if len(text) <= 30 else text[:27] + "..."


def judge(exercise_id: str, answer: Any, /, **inputs: Any) -> tuple[bool | None, str]:
    """Judge ``answer`` without printing: ``(True, "")``, ``(False, why)``, or ``(None, "")`` if not attempted.

    Raises:
        KeyError: ``exercise_id`` is not registered.
        TypeError: ``inputs`` are not the ones the exercise needs (the message lists them).
    """
    ex = get_exercise(exercise_id)
    _check_inputs(ex, inputs)  # a notebook passing the wrong inputs is told even before the first try
    if answer is None or answer is Ellipsis:
        return None, ""
    return _judge(ex, answer, inputs)


def check(exercise_id: str, answer: Any, /, **inputs: Any) -> None:
    """Print whether ``answer`` solves exercise ``exercise_id`` (returns nothing, so a cell shows only the verdict).

    Prints ``[id title] correct.``, ``[id title] not yet right: <why>. Hint: <hint>`` (the hint grows
    stronger with each wrong try) or ``[id title] not attempted yet: ...``. Use ``judge`` for the verdict
    as a value.

    Args:
        exercise_id: e.g. ``"05.1"``.
        answer: the student's value (or function, for exercises that ask for one). ``None`` or ``...``
            means "not attempted yet".
        **inputs: the notebook values the exercise is about (passed to the reference).

    Raises:
        KeyError: ``exercise_id`` is not registered (a typo in the notebook, not a wrong answer).
    """
    ex = get_exercise(exercise_id)
    correct, why = judge(exercise_id, answer, **inputs)
    if correct is None:
        print(f"{ex.label} not attempted yet: replace the placeholder and run the cell again.")
    elif correct:
        print(f"{ex.label} correct.")
    else:
        _wrong_tries[exercise_id] += 1
        hint = f" Hint: {ex.hints[min(_wrong_tries[exercise_id], len(ex.hints)) - 1]}" if ex.hints else ""
        print(f"{ex.label} not yet right: {why}.{hint}")


__all__ = [
    "KINDS",
    "REGISTRY",
    "Exercise",
    "check",
    "compare_values",
    "exercise",
    "exercises_of",
    "get_exercise",
    "judge",
]
