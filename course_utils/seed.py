"""Reproducibility: one call seeds Python, NumPy and torch."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from .checks import expect_bool


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed ``random``, NumPy and torch (CPU and every CUDA device).

    Args:
        seed: a non-negative integer below 2**32.
        deterministic: also ask torch for deterministic algorithms (slower on GPU; ops without a
            deterministic implementation then raise an error instead of silently varying).

    Raises:
        ValueError: ``seed`` negative or not below 2**32.
        TypeError: ``seed`` not an integer (floats, strings and bools are refused), or ``deterministic`` not a bool.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    deterministic = expect_bool(deterministic, "deterministic")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        # cuBLAS needs this workspace setting for deterministic matmuls on CUDA >= 10.2.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif torch.are_deterministic_algorithms_enabled():
        # Only switch off when on: the call itself costs seconds (it imports torch's compiler stack).
        torch.use_deterministic_algorithms(False)
