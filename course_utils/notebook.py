"""The one call a notebook makes before anything else."""

from __future__ import annotations

import matplotlib as mpl
import torch

from .device import describe_device, get_device
from .mode import describe_mode
from .seed import seed_everything


def setup_notebook(
    seed: int = 0, device: str | torch.device | None = None, deterministic: bool = False
) -> torch.device:
    """Seed everything, pick the device, set figure defaults and print a two-line header.

    Args:
        seed: passed to ``seed_everything``.
        device: passed to ``get_device`` (None: ``COURSE_DEVICE`` or the best available one).
        deterministic: ask torch for deterministic algorithms.

    Returns:
        The device to pass explicitly as ``device=`` everywhere in the notebook.
    """
    seed_everything(seed, deterministic=deterministic)
    chosen = get_device(device)
    mpl.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "figure.figsize": (6.0, 4.0),
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    print(f"device: {describe_device(chosen)}")
    print(f"mode:   {describe_mode()}")
    return chosen
