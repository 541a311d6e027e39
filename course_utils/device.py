"""Device selection: CUDA, then Apple MPS, then CPU, with an explicit override."""

from __future__ import annotations

import os
import platform

import torch

ENV_VAR = "COURSE_DEVICE"
_KNOWN = ("cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def get_device(name: str | torch.device | None = None) -> torch.device:
    """Return the device to compute on.

    Args:
        name: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, a ``torch.device`` or None. When None,
            the ``COURSE_DEVICE`` environment variable is used if set, else the best available
            device in the order CUDA, MPS, CPU.

    Raises:
        TypeError: ``name`` is not a str, torch.device or None.
        ValueError: the name is not a device type this course knows (e.g. "gpu", or "meta").
        RuntimeError: the requested device is not available on this machine.
    """
    from_env = name is None and bool(os.environ.get(ENV_VAR))
    if name is None:
        name = os.environ.get(ENV_VAR) or None
    if name is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return _check_device(name)
    except (ValueError, RuntimeError) as err:
        if from_env:  # say where the bad name came from
            raise type(err)(f"{ENV_VAR}={name!r}: {err}") from None
        raise


def _parse_device(name: str | torch.device) -> torch.device:
    """``name`` as a torch.device of a type this course knows; whether it is available is not checked."""
    if isinstance(name, torch.device):
        device = name
    elif isinstance(name, str):
        try:
            device = torch.device(name.strip().lower())
        except RuntimeError as err:  # e.g. "gpu", "cuda:x"
            if name.strip().lower().split(":")[0] in _KNOWN:
                raise ValueError(f"Malformed device {name!r}: expected 'cuda' or 'cuda:N' with N an integer.") from err
            device = None
    else:
        raise TypeError(f"device must be a str, torch.device or None, got {type(name).__name__}")
    if device is None or device.type not in _KNOWN:
        raise ValueError(
            f"Unknown device {str(name)!r}: expected one of 'cpu', 'cuda', 'cuda:N' or 'mps' "
            f"(or leave it unset to pick the best available one)."
        )
    return device


def _check_device(name: str | torch.device) -> torch.device:
    """``_parse_device``, then refuse a device this machine does not have."""
    device = _parse_device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"Device {str(device)!r} was requested but CUDA is not available here. "
                f"Use 'cpu' (or unset {ENV_VAR}), or install a CUDA build of PyTorch on a machine with an NVIDIA GPU."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"Device {str(device)!r} was requested but only {torch.cuda.device_count()} CUDA device(s) exist."
            )
    if device.type == "mps" and not _mps_available():
        raise RuntimeError(
            f"Device 'mps' was requested but Apple MPS is not available here. Use 'cpu' or unset {ENV_VAR}."
        )
    return device


def describe_device(device: torch.device | str | None = None) -> str:
    """One line naming the device, for notebook headers, e.g. ``cuda:0 (NVIDIA H100, 80 GiB)``."""
    device = get_device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"cuda:{index} ({props.name}, {props.total_memory / 2**30:.0f} GiB), torch {torch.__version__}"
    if device.type == "mps":
        return f"mps (Apple GPU, {platform.machine()}), torch {torch.__version__}"
    return f"cpu ({os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads), torch {torch.__version__}"


def synchronize(device: torch.device | str) -> None:
    """Wait for the work queued on ``device`` (GPU kernels run asynchronously); a no-op on the CPU.

    Call it before reading a clock, or a GPU timing measures only how fast work was queued.

    Raises:
        TypeError, ValueError, RuntimeError: as ``get_device`` for a malformed or unavailable device.
    """
    device = get_device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def model_device(model: torch.nn.Module) -> torch.device:
    """Where ``model``'s parameters live (the CPU for a model without parameters).

    Raises:
        TypeError: ``model`` is not a ``torch.nn.Module``.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    first = next(iter(model.parameters()), None)
    return first.device if first is not None else torch.device("cpu")
