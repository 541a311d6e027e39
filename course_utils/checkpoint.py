"""Checkpoints that survive crashes and resume a run exactly.

A checkpoint is one dict of tensors and plain Python values (so ``torch.load(weights_only=True)``
can read it without running pickled code): model, optimizer, scheduler and grad-scaler states, the
epoch, the history, and every random number generator that shapes training (torch CPU and CUDA,
NumPy, Python ``random`` and the data-order generator of the loader). ``atomic_save`` writes to a
temporary file in the same folder, flushes it to disk and then renames it over the old file, so an
interrupted save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

FORMAT_VERSION = 1
LAST = "last.pt"
BEST = "best.pt"
PathLike = str | os.PathLike


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj: Any, path: PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` so that readers see either the old file or the complete new one.

    Args:
        obj: anything ``torch.save`` accepts.
        path: the destination; its folder is created if needed.

    Returns:
        The destination as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp_name, path)  # atomic on POSIX and Windows
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return path


def capture_rng_state(data_generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every random state as tensors and plain values (loadable with ``weights_only=True``).

    Args:
        data_generator: the generator that orders (and here also augments) the training data.
    """
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(np_kind), "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_gauss)},
        "python": {"version": int(py_version), "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss_next": py_gauss},
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if data_generator is not None:
        state["data"] = data_generator.get_state()
    return state


def restore_rng_state(state: Mapping[str, Any], data_generator: torch.Generator | None = None) -> None:
    """Put back the random states saved by ``capture_rng_state``."""
    state = _on_cpu(state)  # generators take CPU byte tensors, even after load(map_location="cuda")
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(int(v) for v in python_state["state"].tolist()),
                     python_state["gauss_next"]))
    if state.get("cuda") and torch.cuda.is_available():
        # a run saved with more GPUs visible than now restores the ones that exist
        for index, cuda_state in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)
    if data_generator is not None and "data" in state:
        data_generator.set_state(state["data"])


def _on_cpu(value: Any) -> Any:
    """``value`` with every tensor inside (dicts, lists) moved to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, Mapping):
        return {key: _on_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(item) for item in value)
    return value


def _unwrap(model: nn.Module) -> nn.Module:
    """The module behind ``torch.compile`` (its state_dict keys have no ``_orig_mod.`` prefix)."""
    return getattr(model, "_orig_mod", model)


def save_checkpoint(path: PathLike, model: nn.Module, *, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any | None = None, scaler: Any | None = None, epoch: int = 0,
                    history: Mapping[str, list[float]] | None = None,
                    data_generator: torch.Generator | None = None, extra: Mapping[str, Any] | None = None) -> Path:
    """Save everything needed to continue training after ``epoch`` (atomically).

    Args:
        path: the checkpoint file, e.g. ``runs/07/last.pt``.
        model: its ``state_dict`` is saved (a compiled model is unwrapped).
        optimizer, scheduler, scaler: saved when given (a GradScaler, even a disabled one).
        epoch: the number of completed epochs.
        history: per-epoch lists of floats.
        data_generator: the data-order generator, saved with the other random states.
        extra: more plain values (strings, numbers, lists, tensors), e.g. the best validation accuracy.
    """
    state = {
        "format_version": FORMAT_VERSION,
        "epoch": int(epoch),
        "model": _unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "history": {key: [float(v) for v in values] for key, values in (history or {}).items()},
        "rng": capture_rng_state(data_generator),
        "extra": dict(extra or {}),
    }
    return atomic_save(state, path)


def load_checkpoint(path: PathLike, model: nn.Module | None = None, *,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any | None = None,
                    scaler: Any | None = None, data_generator: torch.Generator | None = None,
                    restore_rng: bool = False, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` and load it into the objects given.

    Args:
        path: a file written by ``save_checkpoint``.
        model, optimizer, scheduler, scaler: filled from the checkpoint when given.
        data_generator: receives the saved data-order state when ``restore_rng`` is True.
        restore_rng: also put back every random state (what an exact resume needs).
        map_location: where tensors are loaded before ``load_state_dict`` copies them.

    Returns:
        The checkpoint dict (``epoch``, ``history``, ``extra``, ...).

    Raises:
        FileNotFoundError: no file at ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if model is not None:
        _unwrap(model).load_state_dict(state["model"])
    for name, target in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if target is not None and state.get(name):  # an empty dict: saved from a disabled GradScaler
            target.load_state_dict(state[name])
    if restore_rng:
        restore_rng_state(state["rng"], data_generator)
    return state


__all__ = ["BEST", "LAST", "atomic_save", "capture_rng_state", "load_checkpoint", "restore_rng_state",
           "save_checkpoint"]
