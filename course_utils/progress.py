"""Progress bars that render as widgets in JupyterLab and as text in a terminal or CI log."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

from .checks import expect_iterable

T = TypeVar("T")


def progress(iterable: Iterable[T], desc: str | None = None, total: int | None = None,
             leave: bool = True, disable: bool = False, **kwargs: Any) -> tqdm:
    """Wrap ``iterable`` in a ``tqdm.auto`` bar; use it on loops that take more than a few seconds.

    Args:
        iterable: what to loop over.
        desc: the label in front of the bar.
        total: the number of items when ``len(iterable)`` is not defined.
        leave: keep the finished bar on screen.
        disable: turn the bar off (e.g. inner loops).

    Raises:
        TypeError: ``iterable`` cannot be looped over (None, a number).
    """
    expect_iterable(iterable, "iterable", "items (a list, range, DataLoader, ...)")
    return tqdm(iterable, desc=desc, total=total, leave=leave, disable=disable,
                mininterval=0.5, dynamic_ncols=True, **kwargs)
