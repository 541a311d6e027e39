"""Timing shared by the benchmark scripts: the median of repeated calls, synchronised on accelerators."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from course_utils.device import synchronize


def timed(fn: Callable[[], Any], repeats: int, device: torch.device) -> tuple[float, Any]:
    """Median wall time in seconds of ``repeats`` calls of ``fn`` (after one warm-up call) and the last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        result = fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result
