"""Input checks that fail early with a message saying what was expected."""

from __future__ import annotations

import operator
from collections.abc import Sequence

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
    pattern = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
    if tensor.dim() != len(shape):
        raise ValueError(
            f"{name} must have {len(shape)} dimensions {pattern}, got shape {tuple(tensor.shape)}"
        )
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
