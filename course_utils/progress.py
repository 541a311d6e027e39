"""Progress bars that render as widgets in JupyterLab and as text in a terminal or CI log.

Inside a torch.distributed run the bars are always text: its processes write to a terminal or a log
(under torchrun), or are children of a notebook's kernel (``course_utils.launch``) that must not draw
widgets through the kernel's connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import torch.distributed as dist
from tqdm.auto import tqdm
from tqdm.std import tqdm as text_tqdm

from .checks import expect_iterable

T = TypeVar("T")


def progress(
    iterable: Iterable[T],
    desc: str | None = None,
    total: int | None = None,
    leave: bool = True,
    disable: bool = False,
    **kwargs: Any,
) -> tqdm:
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
    bar = text_tqdm if dist.is_available() and dist.is_initialized() else tqdm
    return bar(
        iterable, desc=desc, total=total, leave=leave, disable=disable, mininterval=0.5, dynamic_ncols=True, **kwargs
    )
