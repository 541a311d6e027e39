"""A small, explicit training loop: model + data + loss + optimizer + epochs + device -> history.

The defaults are the plain float32 loop. Keyword options add what a real run needs: mixed precision
on CUDA, channels_last, ``torch.compile``, per-step LR schedules, TensorBoard logging, checkpoints
every epoch (plus the best by validation accuracy) and an exact resume.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import BEST, LAST, load_checkpoint, save_checkpoint
from .checks import expect_positive_int
from .device import get_device, model_device
from .progress import progress

Batch = tuple[torch.Tensor, torch.Tensor]
Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor | float]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
DEFERRED_CHECK_STEPS = 32  # on CUDA, look at the losses every this many steps (each look waits for the GPU)


class History(dict):
    """Per-epoch metrics: ``history["train_loss"]`` is a list with one float per epoch."""

    def log(self, **values: float) -> None:
        """Append one value to each named series."""
        for key, value in values.items():
            self.setdefault(key, []).append(float(value))

    def last(self) -> dict[str, float]:
        """The most recent value of every series."""
        return {key: series[-1] for key, series in self.items() if series}

    def state_dict(self) -> dict[str, list[float]]:
        """A plain dict copy, safe to save inside a checkpoint."""
        return {key: list(series) for key, series in self.items()}

    def load_state_dict(self, state: Mapping[str, list[float]]) -> None:
        """Replace the contents with a saved ``state_dict``."""
        self.clear()
        self.update({key: list(series) for key, series in state.items()})


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose arg-max over classes equals the target class index."""
    if logits.dim() != 2 or targets.dim() != 1 or logits.shape[0] != targets.shape[0]:
        raise ValueError(
            f"accuracy expects logits (N, num_classes) and targets (N,), got {tuple(logits.shape)} "
            f"and {tuple(targets.shape)}"
        )
    return (logits.argmax(dim=1) == targets).float().mean()


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The mixed-precision dtype for ``device``: bf16 on CUDA GPUs that support it, else fp16; None off CUDA."""
    device = torch.device(device)
    if device.type != "cuda":
        return None  # CPU and MPS train in float32 here
    # Native bf16 needs compute capability 8.0+ (Ampere). torch.cuda.is_bf16_supported() also says True
    # on older cards (T4, V100) where bf16 is only emulated and slow, so ask the device itself.
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def describe_precision(device: torch.device | str, amp: bool = True) -> str:
    """One line saying what ``fit(amp=amp)`` computes in on ``device``."""
    dtype = autocast_dtype(device) if amp else None
    if dtype is None:
        return "float32 (mixed precision is only used on CUDA)" if amp else "float32"
    if dtype == torch.float16:
        return "float16 autocast + GradScaler (loss scaling keeps small gradients from underflowing)"
    return "bfloat16 autocast (same exponent range as float32: no loss scaling needed)"


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for a low-precision dtype; a no-op context for float32 (None)."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _split(batch: Any) -> Batch:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(
            "each batch must be an (inputs, targets) pair, e.g. from a Dataset whose __getitem__ "
            f"returns (x, y); got {type(batch).__name__}"
            + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        )
    return batch[0], batch[1]


def _to_device(inputs: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    # non_blocking: a copy from pinned memory overlaps with GPU work; elsewhere it is an ordinary copy
    if channels_last and inputs.dim() == 4:
        return inputs.to(device, non_blocking=device.type == "cuda", memory_format=torch.channels_last)
    return inputs.to(device, non_blocking=device.type == "cuda")


def _check_finite(losses: list[torch.Tensor], first_step: int) -> None:
    values = torch.stack(losses)
    bad = (~torch.isfinite(values)).nonzero()
    if bad.numel():
        i = int(bad[0, 0])
        raise FloatingPointError(
            f"loss became {values[i].item()} at step {first_step + i + 1} of this pass (counting from 1): "
            "lower the learning rate or check the data"
        )


def run_epoch(model: nn.Module, loader: Iterable[Any], loss_fn: LossFn, device: torch.device,
              optimizer: torch.optim.Optimizer | None = None, metrics: Mapping[str, Metric] | None = None,
              desc: str | None = None, show_progress: bool = False, *, amp_dtype: torch.dtype | None = None,
              scaler: torch.amp.GradScaler | None = None, channels_last: bool = False, scheduler: Any | None = None,
              on_step: Callable[[int, torch.Tensor], None] | None = None) -> dict[str, float]:
    """One pass over ``loader``; trains when an optimizer is given, else evaluates without gradients.

    Returns the sample-weighted mean loss and metrics over the pass, as ``{"loss": ..., name: ...}``.

    Args:
        amp_dtype: run forward and loss under ``torch.autocast`` with this dtype (None: float32).
        scaler: an enabled GradScaler scales the loss before ``backward`` (float16 training).
        channels_last: copy 4-D inputs in channels_last memory format.
        scheduler: stepped after every optimizer step (per-step schedules such as OneCycleLR).
        on_step: called as ``fn(step, loss)`` after each training step (``loss`` detached).
    """
    training = optimizer is not None
    model.train(training)
    deferred = device.type == "cuda"  # keep sums on the GPU; a .item() per step would stall it
    totals: dict[str, Any] = {"loss": 0.0, **{name: 0.0 for name in (metrics or {})}}
    pending: list[torch.Tensor] = []
    seen = 0
    batches = progress(loader, desc=desc, leave=False) if show_progress else loader
    use_scaler = training and scaler is not None and scaler.is_enabled()
    with torch.set_grad_enabled(training):
        for step, batch in enumerate(batches):
            inputs, targets = _split(batch)
            inputs = _to_device(inputs, device, channels_last)
            targets = targets.to(device, non_blocking=device.type == "cuda")
            with _autocast(device, amp_dtype):
                outputs = model(inputs)
                loss = loss_fn(outputs, targets)
            if loss.dim() != 0:
                raise ValueError(f"loss_fn must return a scalar (use reduction='mean'), got shape {tuple(loss.shape)}")
            pending.append(loss.detach())
            if not deferred or len(pending) == DEFERRED_CHECK_STEPS:
                _check_finite(pending, step + 1 - len(pending))  # before the update on CPU: weights stay finite
                pending.clear()
            if training:
                optimizer.zero_grad(set_to_none=True)
                if use_scaler:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)  # unscales; skips the step if a gradient is inf/NaN
                    scaler.update()
                else:
                    loss.backward()
                    optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                if on_step is not None:
                    on_step(step, loss.detach())
            n = targets.shape[0]
            seen += n
            for name, fn in (("loss", None), *(metrics or {}).items()):
                value = loss.detach() if fn is None else fn(outputs.detach(), targets)
                if deferred and isinstance(value, torch.Tensor):
                    totals[name] = totals[name] + value.detach().double() * n
                else:
                    totals[name] += float(value) * n
    if pending:
        _check_finite(pending, step + 1 - len(pending))
    if seen == 0:
        raise ValueError("the data loader produced no batches: check the dataset size and batch_size")
    return {name: float(total) / seen for name, total in totals.items()}


def evaluate(model: nn.Module, loader: Iterable[Any], loss_fn: LossFn, device: torch.device | str | None = None,
             metrics: Mapping[str, Metric] | None = None, *, amp: bool = False,
             channels_last: bool = False) -> dict[str, float]:
    """Mean loss and metrics of ``model`` on ``loader``, without gradients (``amp``: autocast on CUDA)."""
    device = model_device(model) if device is None else get_device(device)
    return run_epoch(model, loader, loss_fn, device, optimizer=None, metrics=metrics,
                     amp_dtype=autocast_dtype(device) if amp else None, channels_last=channels_last)


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable[Any], device: torch.device | str | None = None, *,
            amp: bool = False, channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` over ``loader`` in eval mode; return (logits float32 (N, K), targets (N,)) on the CPU."""
    device = model_device(model) if device is None else get_device(device)
    dtype = autocast_dtype(device) if amp else None
    model.eval()
    outputs, labels = [], []
    for batch in loader:
        inputs, targets = _split(batch)
        with _autocast(device, dtype):
            outputs.append(model(_to_device(inputs, device, channels_last)).float().cpu())
        labels.append(targets.cpu())
    return torch.cat(outputs), torch.cat(labels)


def _improved(history: History, key: str, best: float | None) -> bool:
    if not history.get(key):
        return False
    value = history[key][-1]
    if best is None:
        return True
    return value < best if key.endswith("loss") else value > best


def fit(model: nn.Module, train_loader: Iterable[Any], loss_fn: LossFn, optimizer: torch.optim.Optimizer,
        epochs: int, *, device: torch.device | str | None = None, val_loader: Iterable[Any] | None = None,
        metrics: Mapping[str, Metric] | None = None, scheduler: Any | None = None, show_progress: bool = True,
        on_epoch_end: Callable[[int, History], None] | None = None, scheduler_interval: str = "epoch",
        amp: bool = False, channels_last: bool = False, compile_model: bool = False,
        checkpoint_dir: str | os.PathLike | None = None, resume: bool | str | os.PathLike = False,
        best_key: str = "val_acc", tensorboard: str | os.PathLike | None = None, log_every: int = 100,
        batch_progress: bool = False) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader``; return the per-epoch history.

    Args:
        model: already on ``device`` (it is moved there if not).
        train_loader: yields (inputs, targets) batches.
        loss_fn: maps (outputs, targets) to a scalar loss.
        optimizer: built over ``model.parameters()``.
        epochs: the total number of passes, >= 1 (a resumed run counts the epochs already done).
        device: where to compute; default: where the model's parameters are.
        val_loader: evaluated after every epoch when given (keys ``val_*`` in the history).
        metrics: name -> fn(outputs, targets) averaged per epoch, e.g. ``{"acc": accuracy}``.
        scheduler: stepped once per epoch, or after every step with ``scheduler_interval="step"``.
        show_progress: draw a progress bar over epochs.
        on_epoch_end: called as ``fn(epoch, history)`` after each epoch (e.g. to redraw a plot).
        scheduler_interval: ``"epoch"`` or ``"step"``.
        amp: mixed precision on CUDA (bf16 where supported, else fp16 with a GradScaler); float32 elsewhere.
        channels_last: keep the model and image batches in channels_last memory format.
        compile_model: train through ``torch.compile(model)`` (checkpoints hold the plain weights).
        checkpoint_dir: save ``last.pt`` after every epoch and ``best.pt`` when ``best_key`` improves.
        resume: True: continue from ``checkpoint_dir/last.pt`` if it exists; a path: from that file.
        best_key: history key that picks ``best.pt`` (maximised; minimised if it ends in "loss").
        tensorboard: a log folder for ``SummaryWriter`` (train loss every ``log_every`` steps, epoch metrics).
        log_every: steps between TensorBoard train-loss points.
        batch_progress: also draw a progress bar over the batches of each epoch.

    Raises:
        FloatingPointError: the loss became NaN or infinite (the message names the epoch and step).
    """
    expect_positive_int(epochs, "epochs")
    expect_positive_int(log_every, "log_every")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if scheduler_interval not in ("epoch", "step"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
    if resume and checkpoint_dir is None and isinstance(resume, bool):
        raise ValueError("resume=True needs checkpoint_dir (or pass the checkpoint path as resume=...)")
    device = model_device(model) if device is None else get_device(device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    amp_dtype = autocast_dtype(device) if amp else None
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    generator = getattr(train_loader, "generator", None)  # DataLoader(generator=...) and DeviceLoader have one
    generator = generator if isinstance(generator, torch.Generator) else None
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    history, start, best, global_step = History(), 1, None, 0
    if resume:
        path = folder / LAST if isinstance(resume, bool) else Path(resume)
        if path.is_file():
            state = load_checkpoint(path, model, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                                    data_generator=generator, restore_rng=True, map_location="cpu")
            history.load_state_dict(state["history"])
            start, best = state["epoch"] + 1, state["extra"].get("best")
            global_step = int(state["extra"].get("global_step", 0))
        else:
            print(f"no checkpoint at {path}: starting from epoch 1")
    step_model = torch.compile(model) if compile_model else model
    writer = None
    if tensorboard is not None:
        from torch.utils.tensorboard import SummaryWriter  # imported only when asked for: it is slow

        writer = SummaryWriter(str(tensorboard))

    def on_step(step: int, loss: torch.Tensor) -> None:
        nonlocal global_step
        global_step += 1
        if writer is not None and global_step % log_every == 0:
            writer.add_scalar("train/loss_per_step", loss.item(), global_step)

    per_step = scheduler if scheduler_interval == "step" else None
    try:
        for epoch in progress(range(start, epochs + 1), desc="epochs", disable=not show_progress):
            try:
                train_stats = run_epoch(step_model, train_loader, loss_fn, device, optimizer, metrics,
                                        desc=f"epoch {epoch}", show_progress=batch_progress, amp_dtype=amp_dtype,
                                        scaler=scaler, channels_last=channels_last, scheduler=per_step,
                                        on_step=on_step)
            except FloatingPointError as err:
                raise FloatingPointError(f"epoch {epoch}: {err}") from err
            history.log(**{f"train_{k}": v for k, v in train_stats.items()})
            if val_loader is not None:
                val_stats = run_epoch(step_model, val_loader, loss_fn, device, None, metrics, amp_dtype=amp_dtype,
                                      channels_last=channels_last)
                history.log(**{f"val_{k}": v for k, v in val_stats.items()})
            if scheduler is not None and per_step is None:
                scheduler.step()
            if writer is not None:
                for key, values in history.items():
                    writer.add_scalar(f"epoch/{key}", values[-1], epoch)
                writer.add_scalar("epoch/lr", optimizer.param_groups[0]["lr"], epoch)
                writer.flush()
            if folder is not None:
                improved = _improved(history, best_key, best)
                best = history[best_key][-1] if improved else best
                kwargs = {"optimizer": optimizer, "scheduler": scheduler, "scaler": scaler, "epoch": epoch,
                          "history": history, "data_generator": generator,
                          "extra": {"best": best, "best_key": best_key, "global_step": global_step}}
                save_checkpoint(folder / LAST, model, **kwargs)
                if improved:
                    save_checkpoint(folder / BEST, model, **kwargs)
            if on_epoch_end is not None:
                on_epoch_end(epoch, history)
    finally:
        if writer is not None:
            writer.close()
    return history


__all__ = ["History", "accuracy", "autocast_dtype", "describe_precision", "evaluate", "fit", "predict", "run_epoch"]
