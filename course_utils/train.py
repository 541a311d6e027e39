"""One training loop for every task: ``fit`` repeats ``train_epoch`` and ``evaluate`` and keeps the run safe.

The task comes in through a ``loss_fn`` for ``(inputs, targets)`` batches or a ``step`` for anything
else (see ``course_utils.epoch``); every task then gets the same extras: NaN/inf checks, mixed
precision on CUDA (with a GradScaler for float16), channels_last, ``torch.compile``, per-step or
per-epoch LR schedules, TensorBoard, checkpoints that survive crashes and an exact resume. The loop
itself is ``fit``; resume, logging and checkpointing live in the small helpers above it.

Data parallelism (数据并行) needs no other change to the calling code than wrapping the model in
``DistributedDataParallel`` (DDP) in each process of a ``torch.distributed`` run (e.g. started by torchrun,
see ``course_utils.distributed``): the course loaders give each process its shard of every epoch, the
epoch metrics are summed over the processes before they are reported (every process gets the same
history), and only rank 0 draws the progress bar, writes TensorBoard logs and writes checkpoints, which
also hold every process's random state and the world size. Every process loads the checkpoint on
resume, so the run folder must be visible to all of them (a shared file system across machines). A
process that fails makes the others stop with an error that says so, instead of waiting forever.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import distributed
from . import epoch as _epoch
from .checkpoint import RunCheckpoints, capture_rng_state, load_checkpoint, restore_rng_state
from .checks import expect_bool, expect_callable, expect_iterable, expect_mapping, expect_path, expect_positive_int
from .device import get_device, model_device
from .epoch import (
    LossFn,
    Metric,
    Step,
    StepOutput,
    SupervisedStep,
    _check_metrics,
    _resolve_step,
    accuracy,
    autocast_dtype,
    describe_precision,
    evaluate,
    predict,
    train_epoch,
)
from .progress import progress


class History(dict):
    """Per-epoch metrics: ``history["train_loss"]`` is a list with one float per epoch."""

    def log(self, **values: float) -> None:
        """Append one value to each named series.

        Raises:
            TypeError: a value that is not a number (a string, a tensor of several values); nothing is logged.
        """
        numbers = {key: _number(value, f"History.log: {key}") for key, value in values.items()}
        for key, value in numbers.items():
            self.setdefault(key, []).append(value)

    def last(self) -> dict[str, float]:
        """The most recent value of every series."""
        return {key: series[-1] for key, series in self.items() if series}

    def state_dict(self) -> dict[str, list[float]]:
        """A plain dict copy, safe to save inside a checkpoint."""
        return {key: list(series) for key, series in self.items()}

    def load_state_dict(self, state: Mapping[str, list[float]]) -> None:
        """Replace the contents with a saved ``state_dict``.

        Raises:
            TypeError: ``state`` is not a dict of lists of numbers; the history is left unchanged.
        """
        expect_mapping(state, "state", "key -> list of numbers (from History.state_dict())")
        loaded = {}
        for key, series in state.items():
            if isinstance(series, (str, bytes)) or not isinstance(series, (list, tuple)):
                raise TypeError(f"state[{key!r}] must be a list of numbers, got {series!r:.60}")
            loaded[key] = [_number(value, f"state[{key!r}]: each value") for value in series]
        self.clear()
        self.update(loaded)


def _number(value: Any, name: str) -> float:
    """``float(value)`` for a number or a one-element tensor; TypeError naming the value otherwise."""
    if isinstance(value, (str, bytes)):  # float("0.5") would pass
        raise TypeError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a number, got {value!r:.60}") from None


# ----------------------------------------------------------------------------- fit's helpers
class _TrainingLog:
    """Counts training steps and, given a folder, writes them and the epoch metrics to TensorBoard."""

    def __init__(self, folder: str | os.PathLike | None, global_step: int) -> None:
        self.global_step = global_step
        self.writer = None
        if folder is not None:
            from torch.utils.tensorboard import SummaryWriter  # imported only when asked for: it is slow

            self.writer = SummaryWriter(str(folder))

    def add_losses(self, losses: list[float]) -> None:
        for loss in losses:
            self.global_step += 1
            if self.writer is not None:
                self.writer.add_scalar("train/loss_per_step", loss, self.global_step)

    def add_epoch(self, epoch: int, history: History, optimizer: torch.optim.Optimizer) -> None:
        if self.writer is not None:
            for key, values in history.items():
                self.writer.add_scalar(f"epoch/{key}", values[-1], epoch)
            self.writer.add_scalar("epoch/lr", optimizer.param_groups[0]["lr"], epoch)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class _TrainingState:
    """Everything a checkpoint saves and a resume restores."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any | None
    scaler: torch.amp.GradScaler
    data_generator: torch.Generator | None

    def objects(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "scaler": self.scaler,
            "data_generator": self.data_generator,
        }


def _check_fit_arguments(
    model: Any,
    optimizer: Any,
    epochs: Any,
    scheduler_interval: str,
    best_key: Any,
    resume: Any,
    checkpoint_dir: Any,
    **more: Any,
) -> None:
    """Every mistake that can be seen before training starts."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if distributed.is_distributed() and not isinstance(model, nn.parallel.DistributedDataParallel):
        raise ValueError(
            f"this process is one of {distributed.world_size()} in a torch.distributed run, but the model "
            f"is a plain {type(model).__name__}: every process would train its own copy on its own shard. "
            "Wrap it first: model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] "
            "on a GPU, None on the CPU)"
        )
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"fit trains and needs optimizer=a torch.optim.Optimizer over model.parameters(), got "
            f"{type(optimizer).__name__}; to measure a model without training it, call evaluate(...)"
        )
    if epochs is None:
        raise TypeError("fit needs epochs=, the total number of passes over train_loader")
    expect_positive_int(epochs, "epochs")
    if scheduler_interval not in ("epoch", "step"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
    if best_key is not None and not isinstance(best_key, str):
        raise TypeError(f"best_key must be a history key (str) or None, got {type(best_key).__name__}")
    if not isinstance(resume, (bool, str, os.PathLike)):
        raise TypeError(f"resume must be True/False or a checkpoint path, got {type(resume).__name__}")
    if resume is True and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir (or pass the checkpoint path as resume=...)")
    if not isinstance(resume, bool) and not Path(resume).is_file():
        folder = Path(resume).parent
        nearby = sorted(p.name for p in folder.glob("*.pt")) if folder.is_dir() else []
        raise FileNotFoundError(
            f"resume={str(resume)!r}: no such checkpoint (checkpoints in {folder}: "
            f"{nearby or 'none'}); nothing was trained or overwritten"
        )
    expect_iterable(more["train_loader"], "train_loader")
    if more["val_loader"] is not None:
        expect_iterable(more["val_loader"], "val_loader")
    _check_metrics(more["metrics"])
    for flag in ("amp", "channels_last", "compile_model", "show_progress"):
        expect_bool(more[flag], flag)
    expect_callable(more["on_epoch_end"], "on_epoch_end", optional=True)
    if checkpoint_dir is not None:
        expect_path(checkpoint_dir, "checkpoint_dir", "folder path")
        _check_resumable(more["train_loader"])
    if more["tensorboard"] is not None:
        expect_path(more["tensorboard"], "tensorboard", "folder path")
    if scheduler_interval == "step" and more["scheduler"] is None:
        raise ValueError("scheduler_interval='step' needs scheduler=... (a per-step schedule such as OneCycleLR)")


def _check_resumable(loader: Any) -> None:
    """Refuse a loader whose epochs a checkpoint cannot reproduce (issue 10, fault 6).

    A ``DataLoader`` with ``persistent_workers=True`` keeps its worker processes, and their random
    states, from epoch to epoch, and draws its workers' base seed from ``loader.generator`` only once;
    a resumed run starts a fresh pool, which draws again and seeds the workers anew. Neither the
    workers' states nor the missing draw can be saved, so the resumed run would differ.
    """
    if getattr(loader, "persistent_workers", False) and getattr(loader, "num_workers", 0) > 0:
        raise ValueError(
            "train_loader has persistent_workers=True: its workers keep random state that no checkpoint "
            "can save, so a run resumed from checkpoint_dir would not repeat the uninterrupted one. "
            "Build it with persistent_workers=False (workers restart each epoch, a fraction of a second; "
            "make_dataloaders does this), or train without checkpoint_dir"
        )


def _check_best_key(
    folder: str | os.PathLike | None, best_key: str | None, metrics: Mapping[str, Metric] | None, validating: bool
) -> None:
    """Refuse, before training, a ``best_key`` this run would never log."""
    if folder is None:
        return
    logged = [f"{split}_{name}" for split in ("train", "val")[: 1 + validating] for name in ("loss", *(metrics or {}))]
    if best_key is not None and best_key not in logged:
        split, _, name = best_key.partition("_")
        hint = (
            "Pass val_loader=..."
            if split == "val" and not validating
            else f"Pass metrics={{{name!r}: ...}}"
            if split in ("train", "val") and name
            else "Use one of those keys"
        )
        raise ValueError(
            f"best_key={best_key!r} would never be logged, so best.pt would never be written: this run "
            f"logs {logged}. {hint}, or best_key=None to keep only last.pt"
        )


def _resume_source(resume: bool | str | os.PathLike, run: RunCheckpoints | None) -> Path | None:
    """The checkpoint to continue from (None: a new run), decided by rank 0 alone.

    ``resume=True`` continues from the newest checkpoint in the folder, if any; an explicit path must
    exist. A run that does not resume the folder's own checkpoints refuses to overwrite them.
    """
    if resume is False:
        source = None
    elif resume is True:
        source = run.resumable()
        if source is None:
            print(f"no checkpoint in {run.folder} yet: starting from epoch 1")
    else:
        source = Path(resume)
    if run is not None and (source is None or source.resolve() not in [p.resolve() for p in run.files()]):
        run.refuse_existing("resume=False" if source is None else f"resumed from {source}")
    return source


def _restore(
    source: Path | None, run: RunCheckpoints | None, state: _TrainingState, epochs: int
) -> tuple[History, int, int]:
    """Load ``source`` into the training state (every process does); return (history, first epoch, global step)."""
    history = History()
    if source is None:
        return history, 1, 0
    saved = load_checkpoint(
        source,
        state.model,
        optimizer=state.optimizer,
        scheduler=state.scheduler,
        scaler=state.scaler,
        data_generator=state.data_generator,
        restore_rng=True,
    )
    saved_world = int(saved["extra"].get("world_size", 1))
    if saved_world != distributed.world_size():
        raise ValueError(
            f"{source} was written by a run of {saved_world} process(es); this one has "
            f"{distributed.world_size()}. Resuming would change the global batch and each process's "
            f"data, so it would not continue that run: resume with {saved_world} process(es) "
            "(torchrun --nproc_per_node), or start a new run from its weights with "
            "load_checkpoint(path, model)"
        )
    per_rank = saved["extra"].get("rng_per_rank")
    if per_rank:  # each process gets back its own random state (dropout masks differ between ranks)
        restore_rng_state(per_rank[distributed.rank()], state.data_generator)
    if saved["epoch"] > epochs:
        raise ValueError(f"{source} has {saved['epoch']} epochs done, more than epochs={epochs}")
    for name in ("optimizer", "scheduler"):
        if bool(saved[name]) != (getattr(state, name) is not None):
            raise ValueError(
                f"{source} was saved {'with' if saved[name] else 'without'} a {name}; resume it with "
                f"the same setup, or the run would not continue exactly"
            )
    if run is not None:
        run.restore(saved)
    history.load_state_dict(saved["history"])
    return history, saved["epoch"] + 1, int(saved["extra"].get("global_step", 0))


def _check_and_place(arguments: dict[str, Any]) -> torch.device:
    """Every check that can be made before training, then the model on its device; return the device.

    ``arguments`` holds fit's arguments by name (``dict(locals())`` at the top of ``fit``).
    """
    a = arguments
    more = ("train_loader", "val_loader", "metrics", "amp", "channels_last", "compile_model", "show_progress")
    more += ("on_epoch_end", "tensorboard", "scheduler")
    _check_fit_arguments(
        *(a[k] for k in ("model", "optimizer", "epochs", "scheduler_interval", "best_key", "resume", "checkpoint_dir")),
        **{k: a[k] for k in more},
    )
    _check_best_key(a["checkpoint_dir"], a["best_key"], a["metrics"], a["val_loader"] is not None)
    return _place(a["model"], a["device"], a["channels_last"])


def _open_run(
    folder: str | os.PathLike | None, best_key: str | None, resume: bool | str | os.PathLike
) -> tuple[RunCheckpoints | None, Path | None]:
    """Rank 0 opens the run folder and decides what to resume from; every process learns the decision.

    Returns (the run folder on rank 0, None on the others and without ``folder``; the checkpoint to load).
    """
    opened: list[RunCheckpoints] = []

    def on_main() -> Path | None:
        run = RunCheckpoints(folder, best_key) if folder is not None else None
        opened.extend([run] if run is not None else [])
        return _resume_source(resume, run)

    source = distributed.run_on_main(on_main, "opening the checkpoint folder")
    return (opened[0] if opened else None), source


@contextlib.contextmanager
def _epoch_errors(epoch: int) -> Iterator[None]:
    """Name the epoch in a NaN error; turn a collective that lost its peer into a clear DistributedRunError."""
    try:
        yield
    except FloatingPointError as err:
        raise FloatingPointError(f"epoch {epoch}: {err}") from err
    except RuntimeError as err:
        clearer = distributed.explain_peer_failure(err, f"in epoch {epoch}")
        if clearer is err:
            raise
        raise clearer from err


def _place(model: nn.Module, device: torch.device | str | None, channels_last: bool) -> torch.device:
    """Move ``model`` to ``device`` (default: where it is), in channels_last if asked; return the device."""
    device = model_device(model) if device is None else get_device(device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return device


def _data_generator(loader: Any) -> torch.Generator | None:
    generator = getattr(loader, "generator", None)  # DataLoader(generator=...) and the course loaders have one
    return generator if isinstance(generator, torch.Generator) else None


# ----------------------------------------------------------------------------- the loop
def fit(
    model: nn.Module,
    train_loader: Iterable[Any],
    loss_fn: LossFn | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    epochs: int | None = None,
    *,
    step: Step | None = None,
    device: torch.device | str | None = None,
    val_loader: Iterable[Any] | None = None,
    metrics: Mapping[str, Metric] | None = None,
    scheduler: Any | None = None,
    scheduler_interval: str = "epoch",
    amp: bool = False,
    channels_last: bool = False,
    compile_model: bool = False,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool | str | os.PathLike = False,
    best_key: str | None = "val_acc",
    tensorboard: str | os.PathLike | None = None,
    on_epoch_end: Callable[[int, History], None] | None = None,
    show_progress: bool = True,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader``; return the per-epoch history.

    Args:
        model: moved to ``device`` if not there; left in eval mode at the end.
        train_loader: yields batches: ``(inputs, targets)`` with ``loss_fn``, anything ``step`` reads otherwise.
        loss_fn: ``fn(outputs, targets) -> scalar loss`` for ``(inputs, targets)`` batches; or give ``step``.
        optimizer: built over ``model.parameters()`` (required).
        epochs: the total number of passes, >= 1 (a resumed run counts the epochs already done).
        step: ``fn(model, batch) -> loss`` or ``StepOutput(loss, outputs, targets)``, for any other task.
        device: where to compute; default: where the model's parameters are.
        val_loader: evaluated after every epoch when given (keys ``val_*`` in the history).
        metrics: name -> fn(outputs, targets) averaged per epoch, e.g. ``{"acc": accuracy}``.
        scheduler: stepped once per epoch, or after every optimizer step with ``scheduler_interval="step"``.
        amp: mixed precision on CUDA (bf16 where supported, else fp16 with a GradScaler); float32 elsewhere.
        channels_last: keep the model and 4-D image batches in channels_last memory format.
        compile_model: train through ``torch.compile(model)`` (checkpoints hold the plain weights).
        checkpoint_dir: write ``best.pt`` when ``best_key`` improves, then ``last.pt``, after every epoch.
            Checked for writability (and cleaned of interrupted saves) before training starts.
        resume: False: start a new run (a folder that holds another run's checkpoints is refused, never
            overwritten); True: continue from the newest checkpoint in ``checkpoint_dir`` if there is one;
            a path: continue from that file, which must exist. The resumed run repeats the uninterrupted
            one exactly (on deterministic kernels) when every random draw comes from the global RNGs or
            ``train_loader.generator``, which checkpoints save; DataLoader workers are fine when they are
            not persistent (a ``persistent_workers=True`` loader is refused with ``checkpoint_dir``).
        best_key: the history key that picks ``best.pt`` (maximised; minimised if it ends in "loss"), or
            None for ``last.pt`` only; a key this run would never log is refused before training.
        tensorboard: a log folder for ``SummaryWriter`` (the loss of every step, the epoch metrics and LR).
        on_epoch_end: called as ``fn(epoch, history)`` after each epoch (e.g. to redraw a plot); under
            torch.distributed on every process, with the same history (check ``is_main_process()`` to print).
        show_progress: draw a progress bar over epochs (rank 0 only under torch.distributed).

    Under torch.distributed, call ``fit`` on every process with the model wrapped in DDP (see the module
    docstring); each process trains on its loader's shard and the history is the same everywhere.

    Raises:
        FloatingPointError: the loss became NaN or infinite (the message names the epoch and step).
        FileExistsError: ``checkpoint_dir`` holds checkpoints this call would overwrite without resuming them.
        FileNotFoundError: ``resume`` names a file that does not exist.
        OSError: ``checkpoint_dir`` cannot be written to.
        ValueError: with ``checkpoint_dir``, a ``train_loader`` with ``persistent_workers=True`` (a resumed
            run could not repeat its epochs); and the other mistakes seen before training.
        ValueError: under torch.distributed, a model not wrapped in DDP, or a checkpoint of another world size.
        RuntimeError: under torch.distributed, another process failed or stopped answering (the message says so).
    """
    arguments = dict(locals())  # fit's arguments by name, checked together on every rank
    step = _resolve_step(loss_fn, step)
    device = distributed.on_every_rank(lambda: _check_and_place(arguments), "checking fit's arguments")
    amp_dtype = _epoch.autocast_dtype(device) if amp else None  # via the module, as evaluate does
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    state = _TrainingState(model, optimizer, scheduler, scaler, _data_generator(train_loader))
    run, source = _open_run(checkpoint_dir, best_key, resume)  # rank 0's folder (None elsewhere), what to resume
    history, start, global_step = distributed.on_every_rank(
        lambda: _restore(source, run, state, epochs), f"loading the checkpoint {source}"
    )
    main = distributed.is_main_process()  # only rank 0 logs and draws progress
    log = _TrainingLog(tensorboard if main else None, global_step)
    train_model = torch.compile(model) if compile_model else model
    per_step = scheduler if scheduler_interval == "step" else None
    epoch_range = range(start, epochs + 1)
    same = dict(device=device, step=step, metrics=metrics, channels_last=channels_last)  # training and validation
    try:
        for epoch in progress(epoch_range, desc="epochs") if show_progress and main else epoch_range:
            with _epoch_errors(epoch):
                stats = train_epoch(train_model, train_loader, optimizer=optimizer, scheduler=per_step,
                                    amp_dtype=amp_dtype, scaler=scaler, on_losses=log.add_losses, **same)  # fmt: skip
                history.log(**{f"train_{name}": value for name, value in stats.items()})
                if val_loader is not None:
                    stats = evaluate(train_model, val_loader, amp=amp, **same)
                    history.log(**{f"val_{name}": value for name, value in stats.items()})
            if scheduler is not None and per_step is None:
                scheduler.step()
            log.add_epoch(epoch, history, optimizer)
            if checkpoint_dir is not None:
                _save(run, epoch, history, log.global_step, state)
            if on_epoch_end is not None:
                on_epoch_end(epoch, history)
    finally:
        log.close()
    model.eval()
    return history


def _save(run: RunCheckpoints | None, epoch: int, history: History, global_step: int, state: _TrainingState) -> None:
    """Rank 0 writes the checkpoint of ``epoch`` with every process's random state; all learn whether it worked."""
    extra: dict[str, Any] = {"world_size": distributed.world_size()}
    if distributed.is_distributed():
        extra["rng_per_rank"] = distributed.gather_objects(capture_rng_state(state.data_generator))
    error = None
    if run is not None:
        try:
            run.save(epoch, history, global_step=global_step, extra=extra, **state.objects())
        except Exception as err:  # noqa: BLE001 - every process learns about it in check_all
            error = err
    distributed.check_all(error, f"writing the checkpoint of epoch {epoch}")


__all__ = [
    "History",
    "LossFn",
    "Metric",
    "Step",
    "StepOutput",
    "SupervisedStep",
    "accuracy",
    "autocast_dtype",
    "describe_precision",
    "evaluate",
    "fit",
    "predict",
    "train_epoch",
]
