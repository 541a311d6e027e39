"""Peak memory of one call: the most bytes PyTorch held for a function's tensors at any moment while it ran.

Timing says how long a computation takes; this says how much memory it needs at its worst moment, which
is what decides whether a long sequence or a large batch fits at all.

- On a CUDA GPU PyTorch's caching allocator counts it for us: ``torch.cuda.reset_peak_memory_stats`` then
  ``torch.cuda.max_memory_allocated``.
- On the CPU there is no such counter, so we ask the profiler (``profile_memory=True``) to record every
  allocation and every free of PyTorch's CPU allocator with its time stamp, replay them in time order and
  keep the highest running total. That includes the scratch buffers a fused kernel allocates and frees
  inside one call, which the per-operator totals of ``key_averages()`` would net out.

Only memory allocated for tensors counts: not Python objects, not what the BLAS library or the allocator's
cache keep for themselves. Apple's MPS backend exposes no peak counter, so ``mps`` is refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch

from .checks import expect_callable
from .device import _parse_device, get_device

MIB = 2**20


def peak_memory(fn: Callable[[], Any], device: torch.device | str) -> int:
    """Bytes allocated by ``fn()`` at its highest point, above what was allocated when it started.

    ``fn`` is called once with no arguments and its result is released inside the measurement, so the
    result's own memory counts (it exists at the end of the call) but nothing stays allocated afterwards.

    Args:
        fn: the computation to measure, e.g. ``lambda: attention(q, k, v)``. Run it once before if it has
            one-off costs (first-call buffers) that should not be counted.
        device: where ``fn`` allocates its tensors: ``"cpu"`` or a CUDA device.

    Returns:
        The peak in bytes (0 if ``fn`` allocates nothing).

    Raises:
        TypeError: ``fn`` is not callable.
        ValueError: ``device`` is neither the CPU nor a CUDA device (MPS has no peak-memory counter).
        RuntimeError: the device is not available here, or this PyTorch's profiler does not expose the
            allocation events the CPU path reads.
    """
    expect_callable(fn, "fn")
    device = _parse_device(device)
    if device.type == "cuda":
        device = get_device(device)  # a clear error when this machine has no such GPU
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        _call_and_release(fn)
        torch.cuda.synchronize(device)
        return max(0, torch.cuda.max_memory_allocated(device) - start)
    if device.type != "cpu":
        raise ValueError(
            f"peak memory can be measured on 'cpu' or a CUDA device, not {device.type!r}: "
            "measure on the CPU instead (pass device='cpu' and tensors on the CPU)"
        )
    return _cpu_peak(fn)


def _call_and_release(fn: Callable[[], Any]) -> None:
    result = fn()
    del result  # the result is freed inside the measurement


def _cpu_peak(fn: Callable[[], Any]) -> int:
    from torch.autograd import DeviceType
    from torch.autograd.profiler import profile  # unlike torch.profiler.profile, it does not import torch._dynamo

    # The profiler's C++ side (Kineto) logs a start/stop line to stderr on every use and an error when no
    # GPU driver is installed; notebooks would show them. Level 6 silences it unless the user set a level.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    with profile(profile_memory=True) as prof:
        _call_and_release(fn)
    results = getattr(prof, "kineto_results", None)
    if results is None:
        raise RuntimeError(
            f"torch {torch.__version__}: the profiler exposes no allocation events (kineto_results); "
            "peak CPU memory cannot be measured with this version"
        )
    events = [e for e in results.events() if e.name() == "[memory]" and e.device_type() == DeviceType.CPU]
    in_use = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        in_use += event.nbytes()  # positive for an allocation, negative for a free
        peak = max(peak, in_use)
    return peak
