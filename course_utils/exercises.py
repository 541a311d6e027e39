"""Self-checking exercises: tell the student whether an answer is right, without stopping the notebook."""

from __future__ import annotations

from typing import Any

import torch


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu")
    return torch.as_tensor(value)


def check_answer(name: str, answer: Any, expected: Any, *, atol: float = 1e-6, rtol: float = 1e-5,
                 hint: str | None = None) -> bool:
    """Compare a student's answer with the expected value and print a verdict.

    Numbers and tensors are compared with tolerances (shapes must match); anything else with ``==``.
    An answer left as ``None`` or ``...`` counts as not attempted. Returns True only when correct;
    it never raises, so a notebook run top to bottom keeps going.

    Args:
        name: the exercise's title in the message.
        answer: the student's value.
        expected: the reference value.
        atol: absolute tolerance for numeric answers.
        rtol: relative tolerance for numeric answers.
        hint: printed when the answer is wrong.
    """
    if answer is None or answer is Ellipsis:
        print(f"[{name}] not attempted yet: replace the placeholder and run the cell again.")
        return False
    correct = False
    detail = ""
    numeric = isinstance(expected, (int, float, complex, torch.Tensor)) and not isinstance(expected, bool)
    if numeric:
        try:
            got_t, want_t = _as_tensor(answer), _as_tensor(expected)
        except (TypeError, ValueError, RuntimeError):
            detail = f"expected a number or tensor, got {type(answer).__name__}"
        else:
            if got_t.shape != want_t.shape:
                detail = f"expected shape {tuple(want_t.shape)}, got {tuple(got_t.shape)}"
            else:
                got_f, want_f = got_t.to(torch.float64), want_t.to(torch.float64)
                correct = bool(torch.allclose(got_f, want_f, atol=atol, rtol=rtol, equal_nan=False))
                if not correct:
                    err = (got_f - want_f).abs().max().item()
                    detail = f"largest difference from the expected value is {err:.3g}"
    else:
        try:
            correct = bool(answer == expected)
        except Exception as err:  # noqa: BLE001 - a student's object may compare badly
            detail = f"could not compare ({err})"
        if not correct and not detail:
            detail = f"got {answer!r}"
    if correct:
        print(f"[{name}] correct.")
    else:
        message = f"[{name}] not yet right: {detail}."
        if hint:
            message += f" Hint: {hint}"
        print(message)
    return correct
