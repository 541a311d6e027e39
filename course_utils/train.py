"""A small, explicit training loop: model + data + loss + optimizer + epochs + device -> history."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from .checks import expect_positive_int
from .device import get_device
from .progress import progress

Batch = tuple[torch.Tensor, torch.Tensor]
Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor | float]


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


def _model_device(model: nn.Module) -> torch.device:
    first = next(iter(model.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


def _split(batch: Any) -> Batch:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(
            "each batch must be an (inputs, targets) pair, e.g. from a Dataset whose __getitem__ "
            f"returns (x, y); got {type(batch).__name__}"
            + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        )
    return batch[0], batch[1]


def run_epoch(model: nn.Module, loader: Iterable[Any], loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
              device: torch.device, optimizer: torch.optim.Optimizer | None = None,
              metrics: Mapping[str, Metric] | None = None, desc: str | None = None,
              show_progress: bool = False) -> dict[str, float]:
    """One pass over ``loader``; trains when an optimizer is given, else evaluates without gradients.

    Returns the sample-weighted mean loss and metrics over the pass, as ``{"loss": ..., name: ...}``.
    """
    training = optimizer is not None
    model.train(training)
    totals: dict[str, float] = {"loss": 0.0, **{name: 0.0 for name in (metrics or {})}}
    seen = 0
    batches = progress(loader, desc=desc, leave=False) if show_progress else loader
    with torch.set_grad_enabled(training):
        for step, batch in enumerate(batches):
            inputs, targets = _split(batch)
            inputs, targets = inputs.to(device), targets.to(device)
            outputs = model(inputs)
            loss = loss_fn(outputs, targets)
            if loss.dim() != 0:
                raise ValueError(f"loss_fn must return a scalar (use reduction='mean'), got shape {tuple(loss.shape)}")
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss.item()} at step {step} of this pass: lower the learning rate or check the data"
                )
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            n = targets.shape[0]
            seen += n
            totals["loss"] += loss.item() * n
            for name, fn in (metrics or {}).items():
                totals[name] += float(fn(outputs.detach(), targets)) * n
    if seen == 0:
        raise ValueError("the data loader produced no batches: check the dataset size and batch_size")
    return {name: total / seen for name, total in totals.items()}


def evaluate(model: nn.Module, loader: Iterable[Any], loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
             device: torch.device | str | None = None, metrics: Mapping[str, Metric] | None = None) -> dict[str, float]:
    """Mean loss and metrics of ``model`` on ``loader``, without gradients."""
    device = _model_device(model) if device is None else get_device(device)
    return run_epoch(model, loader, loss_fn, device, optimizer=None, metrics=metrics)


def fit(model: nn.Module, train_loader: Iterable[Any], loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        optimizer: torch.optim.Optimizer, epochs: int, *, device: torch.device | str | None = None,
        val_loader: Iterable[Any] | None = None, metrics: Mapping[str, Metric] | None = None,
        scheduler: Any | None = None, show_progress: bool = True,
        on_epoch_end: Callable[[int, History], None] | None = None) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader``; return the per-epoch history.

    Args:
        model: already on ``device`` (it is moved there if not).
        train_loader: yields (inputs, targets) batches.
        loss_fn: maps (outputs, targets) to a scalar loss.
        optimizer: built over ``model.parameters()``.
        epochs: number of passes, >= 1.
        device: where to compute; default: where the model's parameters are.
        val_loader: evaluated after every epoch when given (keys ``val_*`` in the history).
        metrics: name -> fn(outputs, targets) averaged per epoch, e.g. ``{"acc": accuracy}``.
        scheduler: stepped once per epoch when given.
        show_progress: draw a progress bar over epochs.
        on_epoch_end: called as ``fn(epoch, history)`` after each epoch (e.g. to redraw a plot).
    """
    expect_positive_int(epochs, "epochs")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    device = _model_device(model) if device is None else get_device(device)
    model.to(device)
    history = History()
    for epoch in progress(range(1, epochs + 1), desc="epochs", disable=not show_progress):
        try:
            train_stats = run_epoch(model, train_loader, loss_fn, device, optimizer, metrics)
        except FloatingPointError as err:
            raise FloatingPointError(f"epoch {epoch}: {err}") from err
        history.log(**{f"train_{k}": v for k, v in train_stats.items()})
        if val_loader is not None:
            val_stats = run_epoch(model, val_loader, loss_fn, device, None, metrics)
            history.log(**{f"val_{k}": v for k, v in val_stats.items()})
        if scheduler is not None:
            scheduler.step()
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
    return history


__all__ = ["History", "accuracy", "evaluate", "fit", "run_epoch"]
