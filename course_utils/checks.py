"""Input checks that fail early with a message saying what was expected."""

from __future__ import annotations

import math
import numbers
import operator
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch


def expect_tensor(value: object, name: str) -> torch.Tensor:
    """Raise TypeError unless ``value`` is a tensor; return it."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def expect_shape(tensor: torch.Tensor, shape: Sequence[int | str | None], name: str) -> dict[str, int]:
    """Check ``tensor.shape`` against a pattern; return the sizes bound to named dimensions.

    Args:
        tensor: the tensor to check.
        shape: one entry per dimension: an int (that exact size), a str (a named size that must be
            the same wherever the name repeats, e.g. ``("B", "T", "C")``) or None (any size).
        name: how the tensor is called in the error message.

    Raises:
        ValueError: the number of dimensions or a size does not match.
    """
    expect_tensor(tensor, name)
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"the shape pattern must be a tuple or list such as ('B', 'T', 'C'), got {shape!r}")
    pattern = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
    if tensor.dim() != len(shape):
        raise ValueError(f"{name} must have {len(shape)} dimensions {pattern}, got shape {tuple(tensor.shape)}")
    bound: dict[str, int] = {}
    for axis, (want, got) in enumerate(zip(shape, tensor.shape)):
        if want is None:
            continue
        if isinstance(want, str):
            if want in bound and bound[want] != got:
                raise ValueError(
                    f"{name} has shape {tuple(tensor.shape)} but its dimensions named {want!r} "
                    f"must agree (pattern {pattern})"
                )
            bound[want] = got
        elif got != want:
            raise ValueError(
                f"{name} must have size {want} in dimension {axis} {pattern}, got shape {tuple(tensor.shape)}"
            )
    return bound


def expect_positive_int(value: object, name: str) -> int:
    """Raise unless ``value`` is an integer >= 1 (numpy integers and 0-d integer tensors count); return it."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    try:
        value = operator.index(value)  # ints and int-likes pass; floats and strings do not
    except TypeError:
        raise TypeError(f"{name} must be a positive integer, got {value!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1), got {value}")
    return value


def expect_int(value: object, name: str, minimum: int | None = 0) -> int:
    """Raise unless ``value`` is an integer >= ``minimum`` (None: any); numpy integers and 0-d integer tensors count."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def expect_bool(value: object, name: str) -> bool:
    """Raise TypeError unless ``value`` is True or False (a NumPy bool counts; 0, 1, "no", None do not)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def expect_number(value: object, name: str, minimum: float | None = None, *, below: float | None = None) -> float:
    """Raise unless ``value`` is a finite real number >= ``minimum`` (and < ``below``); return it as a float.

    Raises:
        TypeError: not a real number (bools, strings and tensors of several values are refused).
        ValueError: NaN, infinite or out of range.
    """
    bounds = "" if minimum is None else f" >= {minimum:g}"
    if below is not None:
        bounds += f"{' and' if bounds else ''} < {below:g}"
    if isinstance(value, (bool, np.bool_, str, bytes)) or not isinstance(
        value, (numbers.Real, np.number, torch.Tensor)
    ):
        raise TypeError(f"{name} must be a finite number{bounds}, got {value!r} ({type(value).__name__})")
    try:
        number = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a finite number{bounds}, got {value!r}") from None
    if (
        not math.isfinite(number)
        or (minimum is not None and number < minimum)
        or (below is not None and number >= below)
    ):
        raise ValueError(f"{name} must be a finite number{bounds}, got {value!r}")
    return number


def expect_callable(value: object, name: str, *, optional: bool = False) -> object:
    """Raise TypeError unless ``value`` is callable (or None when ``optional``); return it."""
    if not (callable(value) or (optional and value is None)):
        raise TypeError(
            f"{name} must be callable{' or None' if optional else ''}, got {value!r:.60} ({type(value).__name__})"
        )
    return value


def expect_path(value: object, name: str, kind: str = "file path") -> Path:
    """Raise TypeError unless ``value`` is a str or os.PathLike; return it as a Path."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a {kind} (str or os.PathLike), got {value!r:.60} ({type(value).__name__})")
    return Path(value)


def expect_mapping(value: object, name: str, what: str) -> Mapping:
    """Raise TypeError unless ``value`` is a dict-like Mapping; ``what`` describes its entries."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict of {what}, got {value!r:.60} ({type(value).__name__})")
    return value


def expect_iterable(value: object, name: str, what: str = "batches (a DataLoader, a list of batches, ...)") -> object:
    """Raise TypeError unless ``value`` can be looped over; it is not iterated here (a DataLoader would start)."""
    kind = type(value)
    loopable = hasattr(kind, "__iter__") or hasattr(kind, "__getitem__")
    if value is None or isinstance(value, (str, bytes)) or not loopable:
        raise TypeError(f"{name} must be an iterable of {what}, got {value!r:.60} ({type(value).__name__})")
    return value
