"""Checkpoints that survive crashes, load back safely and resume a run exactly.

A checkpoint is one dict of tensors and plain Python values, so ``torch.load(weights_only=True)`` reads
it without running pickled code: model, optimizer, scheduler and grad-scaler states, the epoch, the
history, and every random number generator that shapes training (torch CPU and CUDA, NumPy, Python
``random`` and the data-order generator of the loader). ``save_checkpoint`` refuses anything that
would not load back that way (a NumPy scalar, a ``Path``) at save time, not at resume time.

Writes are atomic: the bytes go to a temporary file ``.<name>.<random>.tmp`` in the same folder, are
flushed to disk, then renamed over the old file, so a crash or a full disk leaves the previous
checkpoint intact. Files get the permissions of any file you create (``0o666`` minus your umask,
usually ``0o644``): a teacher or a TensorBoard process can read them, and a private umask keeps them
private. ``RunCheckpoints`` is the folder of one training run as ``train.fit`` uses it.
"""

from __future__ import annotations

import errno
import io
import os
import pickle
import random
import re
import secrets
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .checks import expect_bool, expect_int, expect_mapping, expect_path
from .device import get_device

FORMAT_VERSION = 1
LAST = "last.pt"
BEST = "best.pt"
PathLike = str | os.PathLike
_PLAIN = (type(None), bool, int, float, str, bytes, torch.Size, torch.device, torch.dtype)
_CONTAINERS = (dict, OrderedDict, list, tuple)
_PROBE = "write-test"
_REQUIRED = ("epoch", "model", "optimizer", "scheduler", "scaler", "history", "rng", "extra")


class CheckpointError(ValueError):
    """A file that is not a checkpoint ``load_checkpoint`` can read, with what it is and how to load it."""


# ----------------------------------------------------------------------------- writing
def _check_loadable(value: Any, where: str) -> None:
    """Raise TypeError naming the first value that ``torch.load(weights_only=True)`` would refuse."""
    if isinstance(value, torch.Tensor) and type(value) in (torch.Tensor, nn.Parameter):
        return
    if type(value) in _PLAIN:  # exact types: np.float64 subclasses float but does not load back
        return
    if type(value) in _CONTAINERS:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(value, dict) and type(key) not in (str, int):
                raise TypeError(f"cannot save {where}: its key {key!r} is a {type(key).__name__}; use str or int keys")
            _check_loadable(item, f"{where}[{key!r}]")
        return
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    raise TypeError(
        f"cannot save {where} = {value!r:.60}: a {kind} would not load back with torch.load(weights_only=True). "
        "Checkpoints hold tensors, numbers, strings, None and lists/tuples/dicts of them: convert it first, "
        "e.g. float(x) or int(x) for a NumPy number, str(p) for a path, x.tolist() for an array"
    )


def _encode(obj: Any) -> bytes:
    """``torch.save(obj)`` into memory, after checking that every value in ``obj`` loads back safely."""
    _check_loadable(obj, "checkpoint")
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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


def _write_error(err: OSError, path: Path, size: int) -> OSError:
    """The same kind of OSError, saying what failed, what is still safe and what to do."""
    intact = f"the previous {path.name} is intact" if path.exists() else f"no earlier {path.name} was there"
    if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        message = (
            f"the disk is full: writing {path} ({size / 1e6:.1f} MB) failed and {intact}. "
            "Free some space, then continue with resume=True"
        )
    else:
        message = f"could not write {path} ({err.strerror or err}); {intact}"
    return type(err)(err.errno, message) if err.errno is not None else type(err)(message)


def _write_atomic(data: bytes, path: Path) -> Path:
    """Write ``data`` to ``path`` so that readers see either the old file or the complete new one."""
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    # O_EXCL: never follow or reuse an existing name; mode 0o666 lets the umask decide, as for any new file
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)  # the bytes are on disk before the name points at them
        finally:
            os.close(fd)
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise _write_error(err, path, len(data)) from err
        raise
    _fsync_dir(path.parent)
    return path


def _file_path(path: Any, name: str) -> Path:
    """``path`` as a Path, refused when it is not a path or names an existing folder."""
    path = expect_path(path, name)
    if path.is_dir():
        raise IsADirectoryError(f"{name}={str(path)!r} is a folder: pass a file name inside it, e.g. {path / LAST}")
    return path


def _generator(value: Any, name: str = "data_generator") -> torch.Generator | None:
    if value is not None and not isinstance(value, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(value).__name__}")
    return value


def _has_method(value: Any, name: str, method: str) -> None:
    if value is not None and not callable(getattr(value, method, None)):
        raise TypeError(
            f"{name} must have {method}() (a torch object such as an LR scheduler or GradScaler) or be "
            f"None, got {type(value).__name__}"
        )


def atomic_save(obj: Any, path: PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically; refuse values that would not load with ``weights_only=True``.

    Args:
        obj: tensors, numbers, strings, None and lists/tuples/dicts of them.
        path: the destination; its folder is created if needed.

    Returns:
        The destination as a Path.

    Raises:
        TypeError: ``obj`` holds a value ``torch.load(weights_only=True)`` would refuse (the message names it).
        OSError: the file could not be written (a full disk says so); the previous file is left intact.
    """
    path = _file_path(path, "path")
    data = _encode(obj)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _write_atomic(data, path)


def remove_temporary_files(folder: PathLike, names: Iterable[str] = (LAST, BEST)) -> list[Path]:
    """Delete what interrupted saves of ``names`` left in ``folder`` (``.<name>.*.tmp``); return the paths."""
    folder = expect_path(folder, "folder", "folder path")
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise TypeError(f"names must be a list of checkpoint file names, e.g. ['last.pt'], got {names!r}")
    removed = []
    for name in names:
        for stray in folder.glob(f".{name}.*.tmp"):
            try:
                stray.unlink()
                removed.append(stray)
            except FileNotFoundError:
                pass
    return removed


def check_writable(folder: PathLike) -> Path:
    """Create ``folder`` if needed and prove that a file can be written there; return it as a Path.

    Raises:
        OSError: (PermissionError, NotADirectoryError, a full disk...) naming the folder and what to do.
    """
    folder = expect_path(folder, "folder", "folder path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".{_PROBE}.{secrets.token_hex(4)}.tmp"  # removed below, or by the next run if killed
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            _write_all(fd, b"ok")
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
    except OSError as err:
        message = (
            f"cannot write checkpoints to {folder}: {err.strerror or err}. "
            "Choose a checkpoint_dir you can write to (nothing was trained yet)"
        )
        raise (type(err)(err.errno, message) if err.errno is not None else type(err)(message)) from err
    return folder


# ----------------------------------------------------------------------------- random states
def capture_rng_state(data_generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every random state as tensors and plain values (loadable with ``weights_only=True``).

    Args:
        data_generator: the generator that orders (and here also augments) the training data.
    """
    _generator(data_generator)
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(np_kind),
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_gauss),
        },
        "python": {
            "version": int(py_version),
            "state": torch.tensor(py_state, dtype=torch.int64),
            "gauss_next": py_gauss,
        },
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if data_generator is not None:
        state["data"] = data_generator.get_state()
    return state


def restore_rng_state(state: Mapping[str, Any], data_generator: torch.Generator | None = None) -> None:
    """Put back the random states saved by ``capture_rng_state``.

    Raises:
        TypeError, ValueError: ``state`` is not such a dict, or ``data_generator`` not a torch.Generator.
    """
    if not isinstance(state, Mapping):
        raise TypeError(
            f"state must be what capture_rng_state returned (a dict with 'torch', 'numpy', 'python'), "
            f"got {type(state).__name__}"
        )
    missing = [key for key in ("torch", "numpy", "python") if key not in state]
    if missing:
        raise ValueError(f"state must be what capture_rng_state returned: missing {missing}")
    _generator(data_generator)
    state = _on_cpu(state)  # generators take CPU byte tensors, even after load(map_location="cuda")
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = state["python"]
    random.setstate(
        (python_state["version"], tuple(int(v) for v in python_state["state"].tolist()), python_state["gauss_next"])
    )
    if state.get("cuda") and torch.cuda.is_available():
        # a run saved with more GPUs visible than now restores the ones that exist
        for index, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
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
    """The module behind ``torch.compile`` and ``DistributedDataParallel`` (keys without ``_orig_mod.``/``module.``)."""
    model = getattr(model, "_orig_mod", model)
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    return getattr(model, "_orig_mod", model)


# ----------------------------------------------------------------------------- save and load
def _history_lists(history: Any) -> dict[str, list[float]]:
    """``history`` as {key: list of floats}; TypeError naming the first entry that is not a list of numbers."""
    if history is None:
        return {}
    expect_mapping(history, "history", "key -> list of numbers (e.g. a History)")
    out = {}
    for key, values in history.items():
        try:
            if isinstance(values, (str, bytes)) or any(isinstance(v, (str, bytes)) for v in values):
                raise TypeError  # float("0.5") would pass: a string is never a logged number
            out[key] = [float(v) for v in values]
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"history[{key!r}] must be a list of numbers, got {values!r:.60}") from None
    return out


def checkpoint_state(
    model: nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    scaler: Any | None = None,
    epoch: int = 0,
    history: Mapping[str, list[float]] | None = None,
    data_generator: torch.Generator | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The checkpoint dict ``save_checkpoint`` writes (arguments as there; the same errors)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
    _has_method(scheduler, "scheduler", "state_dict")
    _has_method(scaler, "scaler", "state_dict")
    epoch = expect_int(epoch, "epoch", 0)
    history = _history_lists(history)
    if extra is not None:
        expect_mapping(extra, "extra", "plain values (numbers, strings, tensors, lists)")
    return {
        "format_version": FORMAT_VERSION,
        "epoch": epoch,
        "model": _unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "history": history,
        "rng": capture_rng_state(data_generator),
        "extra": dict(extra or {}),
    }


def save_checkpoint(
    path: PathLike,
    model: nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    scaler: Any | None = None,
    epoch: int = 0,
    history: Mapping[str, list[float]] | None = None,
    data_generator: torch.Generator | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save everything needed to continue training after ``epoch`` (atomically).

    Args:
        path: the checkpoint file, e.g. ``runs/07/last.pt``.
        model: its ``state_dict`` is saved (a compiled or DDP-wrapped model is unwrapped).
        optimizer, scheduler, scaler: saved when given (a GradScaler, even a disabled one).
        epoch: the number of completed epochs.
        history: per-epoch lists of floats.
        data_generator: the data-order generator, saved with the other random states.
        extra: more plain values (strings, Python numbers, lists, tensors), e.g. the best validation accuracy.

    Raises:
        TypeError: a value would not load back with ``weights_only=True`` (e.g. ``np.float64``, ``Path``):
            nothing is written.
        OSError: writing failed (a full disk says so); the previous file at ``path`` is intact.
    """
    _file_path(path, "path")
    state = checkpoint_state(
        model,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        epoch=epoch,
        history=history,
        data_generator=data_generator,
        extra=extra,
    )
    return atomic_save(state, path)


def _describe_unpicklable(err: Exception) -> str:
    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    return f"an object of class {found.group(1)}" if found else "pickled Python objects"


def read_checkpoint(path: PathLike, map_location: str | torch.device = "cpu", *, mmap: bool = False) -> dict[str, Any]:
    """Read and check a file written by ``save_checkpoint``, with ``weights_only=True``; load it into nothing.

    Raises:
        FileNotFoundError: no file at ``path``.
        IsADirectoryError: ``path`` is a folder (pass the file in it, e.g. ``last.pt``).
        CheckpointError: the file is damaged, or is something else (a whole pickled model, a bare
            ``state_dict``, another format version): the message says what it is and how to load it.
    """
    path = expect_path(path, "path")
    if isinstance(map_location, (str, torch.device)):
        get_device(map_location)  # a clear error for "gpu" or an unavailable device, before reading
    if path.is_dir():
        names = sorted(p.name for p in path.glob("*.pt"))
        raise IsADirectoryError(
            f"{path} is a folder, not a checkpoint file: pass the file, e.g. {path / LAST}"
            f" (checkpoints there: {names or 'none'})"
        )
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} is not a course_utils checkpoint: it holds {_describe_unpicklable(err)}, as written by "
            "torch.save(model) for a whole model. torch.load(weights_only=True) refuses such files because "
            "unpickling can run arbitrary code. If you trust the file, load it with "
            "torch.load(path, weights_only=False) (the model's class must be importable), then keep "
            "model.state_dict() or use save_checkpoint"
        ) from None
    except RuntimeError as err:
        if "zip archive" not in str(err) and "central directory" not in str(err):
            raise
        raise CheckpointError(
            f"{path} is damaged or incomplete ({path.stat().st_size} bytes, not a complete torch.save file): "
            "use another checkpoint (fit writes best.pt and last.pt atomically, so theirs are complete)"
        ) from err
    except Exception as err:
        if zipfile.is_zipfile(path):
            raise
        raise CheckpointError(
            f"{path} is not a torch.save file, or is damaged ({path.stat().st_size} bytes, not a zip archive, "
            f"starting {path.read_bytes()[:16]!r}): use a file written by save_checkpoint or fit"
        ) from err
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a checkpoint written by save_checkpoint")
    if "format_version" not in state:
        if state and all(isinstance(v, torch.Tensor) for v in state.values()):
            example = next(iter(state))
            raise CheckpointError(
                f"{path} is a bare state_dict ({len(state)} tensors, e.g. {example!r}), as written by "
                "torch.save(model.state_dict()), not a course_utils checkpoint: load it with "
                "model.load_state_dict(torch.load(path, weights_only=True))"
            )
        raise CheckpointError(
            f"{path} is not a course_utils checkpoint: a dict with keys {sorted(map(str, state))} "
            "and no 'format_version'; load it with torch.load(path, weights_only=True)"
        )
    if state["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {state['format_version']!r}; this course_utils reads "
            f"format {FORMAT_VERSION}: use the course_utils version that wrote it"
        )
    missing = [key for key in _REQUIRED if key not in state]
    if missing:
        raise CheckpointError(f"{path} is an incomplete checkpoint: it lacks {missing}")
    return state


def load_checkpoint(
    path: PathLike,
    model: nn.Module | None = None,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    scaler: Any | None = None,
    data_generator: torch.Generator | None = None,
    restore_rng: bool = False,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` and load it into the objects given.

    Args:
        path: a file written by ``save_checkpoint`` (or ``fit(checkpoint_dir=...)``).
        model, optimizer, scheduler, scaler: filled from the checkpoint when given.
        data_generator: receives the saved data-order state when ``restore_rng`` is True.
        restore_rng: also put back every random state (what an exact resume needs).
        map_location: where tensors are loaded before ``load_state_dict`` copies them.

    Returns:
        The checkpoint dict (``epoch``, ``history``, ``extra``, ...).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is not such a checkpoint (see ``read_checkpoint``).
        RuntimeError: the saved weights do not fit ``model`` (missing or unexpected keys, other shapes).
    """
    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module or None, got {type(model).__name__}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
    _has_method(scheduler, "scheduler", "load_state_dict")
    _has_method(scaler, "scaler", "load_state_dict")
    _generator(data_generator)
    restore_rng = expect_bool(restore_rng, "restore_rng")
    state = read_checkpoint(path, map_location)
    if model is not None:
        try:
            _unwrap(model).load_state_dict(state["model"])
        except RuntimeError as err:
            raise RuntimeError(f"{path}: the saved weights do not fit this model: {err}") from None
    for name, target in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if target is not None and state.get(name):  # an empty dict: saved from a disabled GradScaler
            try:
                target.load_state_dict(state[name])
            except (ValueError, KeyError, RuntimeError) as err:
                raise ValueError(
                    f"{path}: the saved {name} state ({err}) does not fit this {name}: build it over the "
                    "same parameters, with the same settings, as the run that saved it"
                ) from None
    if restore_rng:
        restore_rng_state(state["rng"], data_generator)
    return state


# ----------------------------------------------------------------------------- one run's folder
class RunCheckpoints:
    """The checkpoint folder of one training run: ``last.pt`` after every epoch, ``best.pt`` when it improves.

    Creating it checks that the folder is writable and deletes what interrupted saves left there, before
    any training. ``save`` writes ``best.pt`` *before* ``last.pt``: a crash between the two leaves
    ``best.pt`` one epoch ahead, never behind (its history extends ``last.pt``'s, so the two agree), and
    ``resumable()`` brings ``last.pt`` up to it before a resumed run continues.

    Args:
        folder: the run's folder (created if needed).
        best_key: the history key that picks ``best.pt`` (maximised; minimised if it ends in "loss"),
            or None for no ``best.pt``.

    Raises:
        OSError: the folder cannot be written to.
    """

    def __init__(self, folder: PathLike, best_key: str | None) -> None:
        expect_path(folder, "folder", "folder path")
        if best_key is not None and not isinstance(best_key, str):
            raise TypeError(f"best_key must be a history key (str) or None, got {type(best_key).__name__}")
        self.removed: list[Path] = []
        if Path(folder).is_dir():
            try:  # first, so that even a run killed during the check below leaves no older leftovers
                self.removed = remove_temporary_files(folder, (LAST, BEST, _PROBE))
            except OSError:
                pass  # an unwritable folder: check_writable says so
        self.folder = check_writable(folder)
        self.best_key = best_key
        self.best: float | None = None
        self.best_epoch: int | None = None

    def files(self) -> list[Path]:
        """The checkpoints present, ``last.pt`` first."""
        return [self.folder / name for name in (LAST, BEST) if (self.folder / name).is_file()]

    def resumable(self) -> Path | None:
        """``last.pt`` to resume from, or None when the folder holds no checkpoint.

        After a crash between the two writes of ``save``, ``best.pt`` is one epoch ahead of ``last.pt`` (or
        ``last.pt`` is missing): ``best.pt`` then *is* the newest state, and is first copied to ``last.pt``.
        """
        epochs = {path.name: read_checkpoint(path, mmap=True)["epoch"] for path in self.files()}
        if not epochs:
            return None
        if epochs.get(BEST, -1) > epochs.get(LAST, -1):
            _write_atomic((self.folder / BEST).read_bytes(), self.folder / LAST)
        return self.folder / LAST

    def refuse_existing(self, why: str) -> None:
        """Raise FileExistsError if the folder holds checkpoints.

        A run that did not resume them must not overwrite them.
        """
        files = self.files()
        if files:
            epoch = read_checkpoint(files[0], mmap=True)["epoch"]
            raise FileExistsError(
                f"{self.folder} already holds checkpoints of another run ({', '.join(p.name for p in files)}, "
                f"epoch {epoch}) and this run ({why}) would overwrite them. Pass resume=True to continue that run, "
                "or start a new run in an empty folder (another checkpoint_dir, or delete this one first)"
            )

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take the best score so far from a resumed checkpoint (the same ``best_key`` is required)."""
        if not isinstance(state, Mapping) or not isinstance(state.get("extra"), Mapping):
            keys = sorted(map(str, state)) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(
                f"state must be a checkpoint dict (from read_checkpoint) with its 'extra' dict; got {keys}"
            )
        extra = state["extra"]
        if extra.get("best_key", self.best_key) != self.best_key:
            raise ValueError(
                f"this run was checkpointed with best_key={extra['best_key']!r}; resume it with the "
                f"same best_key, not {self.best_key!r}"
            )
        self.best, self.best_epoch = extra.get("best"), extra.get("best_epoch")

    def _improved(self, value: float) -> bool:
        if value != value or value in (float("inf"), float("-inf")):  # NaN or infinite never counts as best
            return False
        if self.best is None:
            return True
        return value < self.best if self.best_key.endswith("loss") else value > self.best

    def save(
        self,
        epoch: int,
        history: Mapping[str, list[float]],
        *,
        model: nn.Module,
        global_step: int = 0,
        extra: Mapping[str, Any] | None = None,
        **objects: Any,
    ) -> bool:
        """Write ``best.pt`` (when ``best_key`` improved), then ``last.pt``; return whether it improved.

        Args:
            extra: more plain values for the checkpoint's ``extra`` (``fit`` adds the world size and, under
                torch.distributed, every process's random state).
            objects: ``optimizer``, ``scheduler``, ``scaler``, ``data_generator`` as for ``save_checkpoint``.
        """
        if self.best_key is not None and not (isinstance(history, Mapping) and history.get(self.best_key)):
            have = sorted(history) if isinstance(history, Mapping) else type(history).__name__
            raise ValueError(
                f"best_key={self.best_key!r} is not in the history (it has {have}): log it every epoch, "
                "or create RunCheckpoints with best_key=None"
            )
        improved = self.best_key is not None and self._improved(history[self.best_key][-1])
        if improved:
            self.best, self.best_epoch = float(history[self.best_key][-1]), epoch
        extra = {
            **(extra or {}),
            "best": self.best,
            "best_epoch": self.best_epoch,
            "best_key": self.best_key,
            "global_step": int(global_step),
        }
        data = _encode(checkpoint_state(model, epoch=epoch, history=history, extra=extra, **objects))
        if improved:
            _write_atomic(data, self.folder / BEST)
        _write_atomic(data, self.folder / LAST)
        return improved


__all__ = [
    "BEST",
    "FORMAT_VERSION",
    "LAST",
    "CheckpointError",
    "RunCheckpoints",
    "atomic_save",
    "capture_rng_state",
    "check_writable",
    "checkpoint_state",
    "load_checkpoint",
    "read_checkpoint",
    "remove_temporary_files",
    "restore_rng_state",
    "save_checkpoint",
]
