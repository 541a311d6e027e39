"""One pass over a loader, for any task: ``train_epoch`` (needs an optimizer) and ``evaluate`` (no gradients).

What differs between tasks is the *step*: how one batch becomes a loss. For ``(inputs, targets)``
batches pass a ``loss_fn`` (the step is then ``loss_fn(model(inputs), targets)``, see ``SupervisedStep``);
for anything else pass ``step=fn`` with ``fn(model, batch) -> loss`` or ``-> StepOutput(loss, outputs,
targets)``, in the spirit of Lightning's ``training_step``. Batches are moved to the device first (every
tensor inside tuples, lists and dicts) and the step runs under autocast when asked.

Epoch sums are kept as float32 tensors and read back to Python floats every few steps (every step on
the CPU, before the update, so that a NaN loss never reaches the weights): no float64 tensor is made,
since Apple's MPS has none. ``course_utils.train.fit`` repeats these passes and adds the rest.

Under ``torch.distributed`` (several processes, each with its shard of the data) every process must call
``train_epoch`` / ``evaluate`` alike: the sample-weighted sums and sample counts are summed over the
processes before the means are taken, so every process returns the same numbers, the ones one process
would compute over all the shards together.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from . import distributed
from .checks import expect_bool, expect_callable, expect_iterable, expect_mapping, expect_positive_int, expect_tensor
from .device import _parse_device, get_device, model_device

Metric = Callable[[torch.Tensor, torch.Tensor], "torch.Tensor | float"]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
DEFERRED_CHECK_STEPS = 32  # on CUDA, read the losses back every this many steps (each read waits for the GPU)


# ----------------------------------------------------------------------------- steps
@dataclass
class StepOutput:
    """What a step returns for one batch.

    Attributes:
        loss: scalar tensor, the batch's mean loss (the one to minimise).
        outputs, targets: what ``metrics`` functions receive as ``fn(outputs, targets)`` (detached).
        size: how many samples the batch counts for in the epoch means; default ``len(targets)``,
            else the length of the batch's first tensor.
    """

    loss: torch.Tensor
    outputs: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    size: int | None = None


Step = Callable[[nn.Module, Any], "torch.Tensor | StepOutput"]


def _split(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(
            "each batch must be an (inputs, targets) pair, e.g. from a Dataset whose __getitem__ returns (x, y), "
            f"or pass step=fn(model, batch) for other batches; got {type(batch).__name__}"
            + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        )
    return batch[0], batch[1]


@dataclass(frozen=True)
class SupervisedStep:
    """The step for ``(inputs, targets)`` batches: ``outputs = model(inputs)``, ``loss = loss_fn(outputs, targets)``."""

    loss_fn: LossFn

    def __post_init__(self) -> None:
        expect_callable(self.loss_fn, "loss_fn")

    def __call__(self, model: nn.Module, batch: Any) -> StepOutput:
        inputs, targets = _split(batch)
        outputs = model(inputs)
        return StepOutput(self.loss_fn(outputs, targets), outputs, targets)


def _resolve_step(loss_fn: LossFn | None, step: Step | None) -> Step:
    if loss_fn is not None and step is not None:
        raise ValueError("pass loss_fn (for (inputs, targets) batches) or step=fn(model, batch), not both")
    if loss_fn is None and step is None:
        raise TypeError("missing the loss: pass loss_fn=fn(outputs, targets) or step=fn(model, batch) -> loss")
    fn = step if step is not None else loss_fn
    if not callable(fn):
        raise TypeError(f"{'step' if step is not None else 'loss_fn'} must be callable, got {type(fn).__name__}")
    return step if step is not None else SupervisedStep(loss_fn)


def _to_device(batch: Any, device: torch.device, channels_last: bool) -> Any:
    """``batch`` with every tensor (in tuples, lists, dicts) on ``device``; 4-D float tensors channels_last if asked."""
    if isinstance(batch, torch.Tensor):
        # non_blocking: a copy from pinned memory overlaps with GPU work; elsewhere it is an ordinary copy
        if channels_last and batch.dim() == 4 and batch.is_floating_point():
            return batch.to(device, non_blocking=device.type == "cuda", memory_format=torch.channels_last)
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, (tuple, list)):
        items = [_to_device(item, device, channels_last) for item in batch]
        return type(batch)(*items) if hasattr(batch, "_fields") else type(batch)(items)  # namedtuples too
    if isinstance(batch, Mapping):
        return {key: _to_device(item, device, channels_last) for key, item in batch.items()}
    return batch


def _first_length(batch: Any) -> int | None:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.dim() else None
    items = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (tuple, list)) else ()
    for item in items:
        found = _first_length(item)
        if found is not None:
            return found
    return None


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for a low-precision dtype; a no-op context for float32 (None)."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _run_step(
    model: nn.Module, step: Step, batch: Any, device: torch.device, amp_dtype: torch.dtype | None, channels_last: bool
) -> StepOutput:
    batch = _to_device(batch, device, channels_last)
    with _autocast(device, amp_dtype):
        out = step(model, batch)
    result = out if isinstance(out, StepOutput) else StepOutput(out)
    loss = result.loss
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0 or not loss.is_floating_point():
        got = f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"the loss must be a scalar float tensor (e.g. reduction='mean'), got {got}")
    if result.size is None:
        result.size = _first_length(result.targets if result.targets is not None else batch) or 1
    else:
        result.size = expect_positive_int(result.size, "StepOutput.size (samples in the batch)")
    return result


def _check_metrics(metrics: Any) -> None:
    if metrics is not None:
        expect_mapping(metrics, "metrics", "name -> fn(outputs, targets), e.g. {'acc': accuracy}")
        for name, fn in metrics.items():
            expect_callable(fn, f"metrics[{name!r}]")


def _check_pass(loader: Any, metrics: Any, **flags: Any) -> None:
    """The arguments every pass shares, checked before the first batch."""
    expect_iterable(loader, "loader")
    _check_metrics(metrics)
    for name, value in flags.items():
        expect_bool(value, name)


# ----------------------------------------------------------------------------- one pass
class _EpochTotals:
    """Sample-weighted sums of the loss and metrics, read back as Python floats every ``every`` steps.

    Reading back costs one wait for the device, so on CUDA it happens every ``DEFERRED_CHECK_STEPS``
    steps; on the CPU after every step, *before* the update, so a NaN loss never reaches the weights.
    """

    def __init__(
        self,
        metrics: Mapping[str, Metric] | None,
        device: torch.device,
        on_losses: Callable[[list[float]], None] | None,
    ) -> None:
        self.metrics, self.device, self.on_losses = dict(metrics or {}), device, on_losses
        self.every = DEFERRED_CHECK_STEPS if device.type == "cuda" else 1
        self.sums = dict.fromkeys(["loss", *self.metrics], 0.0)
        self.rows: list[torch.Tensor] = []
        self.sizes: list[int] = []
        self.seen = self.steps = 0

    def add(self, result: StepOutput) -> None:
        values = [result.loss.detach().float()]
        if self.metrics and (result.outputs is None or result.targets is None):
            raise ValueError(
                "metrics need outputs and targets: return StepOutput(loss, outputs, targets) from the step"
            )
        for name, fn in self.metrics.items():
            value = fn(result.outputs.detach(), result.targets)
            value = torch.as_tensor(value, dtype=torch.float32, device=self.device).detach().float()
            if value.dim() != 0:
                raise ValueError(f"metric {name!r} must return a scalar, got shape {tuple(value.shape)}")
            values.append(value)
        self.rows.append(torch.stack(values))
        self.sizes.append(int(result.size))
        if len(self.rows) == self.every:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        table = torch.stack(self.rows).tolist()  # (S, 1 + M): one wait for the device
        for i, (row, size) in enumerate(zip(table, self.sizes)):
            if not math.isfinite(row[0]):
                raise FloatingPointError(
                    f"loss became {row[0]} at step {self.steps + i + 1} of this pass "
                    "(counting from 1): lower the learning rate or check the data"
                )
            for name, value in zip(self.sums, row):
                self.sums[name] += value * size
        if self.on_losses is not None:
            self.on_losses([row[0] for row in table])
        self.steps += len(table)
        self.seen += sum(self.sizes)
        self.rows, self.sizes = [], []

    def means(self) -> dict[str, float]:
        """Sample-weighted means over the pass, over every process's shard under torch.distributed."""
        self.flush()
        *sums, seen = distributed.all_reduce_sum([*self.sums.values(), float(self.seen)])
        if seen == 0:
            raise ValueError("the data loader produced no batches: check the dataset size and batch_size")
        return {name: total / seen for name, total in zip(self.sums, sums)}


class _StepWatch:
    """Counts the optimizer steps that really ran: a GradScaler skips those whose gradients overflowed."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.count = 0
        self.handle = optimizer.register_step_post_hook(self._hook)

    def _hook(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.count += 1

    def pop(self) -> bool:
        ran, self.count = self.count > 0, 0
        return ran


def _device_for(model: nn.Module, device: torch.device | str | None) -> torch.device:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model_device(model) if device is None else get_device(device)


def train_epoch(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: LossFn | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    device: torch.device | str | None = None,
    *,
    step: Step | None = None,
    metrics: Mapping[str, Metric] | None = None,
    scheduler: Any | None = None,
    amp_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    channels_last: bool = False,
    on_losses: Callable[[list[float]], None] | None = None,
) -> dict[str, float]:
    """One training pass over ``loader``: per batch, the step's loss, ``backward`` and one optimizer step.

    Args:
        loss_fn / step: the loss of one batch (see the module docstring); pass exactly one.
        optimizer: required (to measure without training, call ``evaluate``).
        device: where to compute; default: where the model's parameters are. Batches are moved there.
        metrics: name -> fn(outputs, targets), averaged over the pass like the loss.
        scheduler: stepped after every optimizer step that ran (per-step schedules such as OneCycleLR);
            a step that the GradScaler skipped does not advance it.
        amp_dtype: run the step under ``torch.autocast`` with this dtype (None: float32).
        scaler: an enabled GradScaler scales the loss before ``backward`` (float16 training).
        channels_last: copy 4-D float batch tensors in channels_last memory format.
        on_losses: called with the per-step losses (Python floats) each time they are read back.

    Returns:
        The sample-weighted means over the pass: ``{"loss": ..., name: ...}``.

    Raises:
        FloatingPointError: the loss became NaN or infinite (the message names the step).
        ValueError: the loader produced no batches, or the loss is not a scalar.
    """
    step = _resolve_step(loss_fn, step)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"train_epoch updates the model and needs optimizer=a torch.optim.Optimizer, got "
            f"{type(optimizer).__name__}; to measure a model without training it, call evaluate(...)"
        )
    _check_pass(loader, metrics, channels_last=channels_last)
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise TypeError(
            f"scheduler must have a step() method (a torch.optim.lr_scheduler), got {type(scheduler).__name__}"
        )
    if scaler is not None and not isinstance(scaler, torch.amp.GradScaler):
        raise TypeError(f"scaler must be a torch.amp.GradScaler or None, got {type(scaler).__name__}")
    if amp_dtype not in (None, torch.float16, torch.bfloat16):
        raise ValueError(f"amp_dtype must be torch.float16, torch.bfloat16 or None (float32), got {amp_dtype}")
    expect_callable(on_losses, "on_losses", optional=True)
    device = _device_for(model, device)
    use_scaler = scaler is not None and scaler.is_enabled()
    totals = _EpochTotals(metrics, device, on_losses)
    watch = _StepWatch(optimizer) if scheduler is not None else None
    model.train()
    try:
        for batch in loader:
            result = _run_step(model, step, batch, device, amp_dtype, channels_last)
            totals.add(result)
            optimizer.zero_grad(set_to_none=True)
            if use_scaler:
                scaler.scale(result.loss).backward()
                scaler.step(optimizer)  # unscales; skips the step if a gradient is inf/NaN
                scaler.update()
            else:
                result.loss.backward()
                optimizer.step()
            if watch is not None and watch.pop():
                scheduler.step()
    finally:
        if watch is not None:
            watch.handle.remove()
    return totals.means()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: LossFn | None = None,
    device: torch.device | str | None = None,
    metrics: Mapping[str, Metric] | None = None,
    *,
    step: Step | None = None,
    amp: bool = False,
    channels_last: bool = False,
) -> dict[str, float]:
    """Mean loss and metrics of ``model`` on ``loader`` in eval mode, without gradients.

    Args as for ``train_epoch``; ``amp``: autocast on CUDA as ``fit(amp=True)`` does.

    Returns:
        ``{"loss": ..., name: ...}``, sample-weighted means.
    """
    step = _resolve_step(loss_fn, step)
    _check_pass(loader, metrics, amp=amp, channels_last=channels_last)
    device = _device_for(model, device)
    amp_dtype = autocast_dtype(device) if amp else None
    totals = _EpochTotals(metrics, device, None)
    model.eval()
    for batch in loader:
        totals.add(_run_step(model, step, batch, device, amp_dtype, channels_last))
    return totals.means()


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: Iterable[Any],
    device: torch.device | str | None = None,
    *,
    amp: bool = False,
    channels_last: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` over ``(inputs, targets)`` batches in eval mode.

    Returns:
        (logits float32 (N, K), targets (N,)), on the CPU.

    Raises:
        ValueError: the loader produced no batches, or a batch is not an ``(inputs, targets)`` pair.
    """
    _check_pass(loader, None, amp=amp, channels_last=channels_last)
    device = _device_for(model, device)
    dtype = autocast_dtype(device) if amp else None
    model.eval()
    outputs, labels = [], []
    for batch in loader:
        inputs, targets = _split(batch)
        with _autocast(device, dtype):
            outputs.append(model(_to_device(inputs, device, channels_last)).float().cpu())
        labels.append(targets.cpu())
    if not outputs:
        raise ValueError("the data loader produced no batches: check the dataset size and batch_size")
    return torch.cat(outputs), torch.cat(labels)


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose arg-max over classes equals the target class index.

    Args:
        logits: (N, K) scores (any monotone transform of them, e.g. probabilities, gives the same result).
        targets: (N,) class indices in [0, K), on the same device.

    Raises:
        TypeError: not tensors.
        ValueError: other shapes, different devices, N = 0; on the CPU (where reading values costs nothing,
            unlike a GPU, which would have to wait) also targets outside [0, K).

    Returns:
        A 0-d float tensor in [0, 1]; NaN when ``logits`` hold NaN.
    """
    expect_tensor(logits, "logits")
    expect_tensor(targets, "targets")
    if logits.dim() != 2 or targets.dim() != 1 or logits.shape[0] != targets.shape[0]:
        raise ValueError(
            f"accuracy expects logits (N, num_classes) and targets (N,), got {tuple(logits.shape)} "
            f"and {tuple(targets.shape)}"
        )
    if logits.device != targets.device:
        raise ValueError(f"logits and targets must be on the same device, got {logits.device} and {targets.device}")
    if logits.shape[0] == 0:
        raise ValueError("accuracy of no samples is undefined: logits and targets are empty")
    if logits.device.type == "cpu":
        k = logits.shape[1]
        if bool(((targets < 0) | (targets >= k)).any()):
            raise ValueError(
                f"targets must be class indices in [0, {k}), got values from {targets.min().item()} to "
                f"{targets.max().item()}"
            )
    hits = (logits.argmax(dim=1) == targets).float().mean()
    # NaN scores have no arg-max: the accuracy is NaN (visible in the history, and fit's loss check names the
    # step), not the share of rows where argmax happened to pick the target. No host sync: fine on a GPU.
    return torch.where(logits.isnan().any(), torch.full_like(hits, float("nan")), hits)


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The mixed-precision dtype for ``device``: bf16 on CUDA GPUs that support it, else fp16; None off CUDA.

    Raises:
        TypeError, ValueError: ``device`` is not a device name this course knows.
        RuntimeError: a CUDA device this machine does not have.
    """
    device = _parse_device(device)
    if device.type != "cuda":
        return None  # CPU and MPS train in float32 here
    # Native bf16 needs compute capability 8.0+ (Ampere). torch.cuda.is_bf16_supported() also says True
    # on older cards (T4, V100) where bf16 is only emulated and slow, so ask the device itself.
    try:
        major, _ = torch.cuda.get_device_capability(device)
    except (RuntimeError, AssertionError) as err:  # no GPU or driver, or a CPU-only build of torch
        raise RuntimeError(
            f"cannot ask {device} for its compute capability: {err}. Ask about the device you "
            f"train on, e.g. autocast_dtype(get_device())"
        ) from None
    return torch.bfloat16 if major >= 8 else torch.float16


def describe_precision(device: torch.device | str, amp: bool = True) -> str:
    """One line saying what ``fit(amp=amp)`` computes in on ``device``."""
    amp = expect_bool(amp, "amp")
    dtype = autocast_dtype(device) if amp else None
    if dtype is None:
        return "float32 (mixed precision is only used on CUDA)" if amp else "float32"
    if dtype == torch.float16:
        return "float16 autocast + GradScaler (loss scaling keeps small gradients from underflowing)"
    return "bfloat16 autocast (same exponent range as float32: no loss scaling needed)"


__all__ = [
    "DEFERRED_CHECK_STEPS",
    "LossFn",
    "Metric",
    "Step",
    "StepOutput",
    "SupervisedStep",
    "accuracy",
    "autocast_dtype",
    "describe_precision",
    "evaluate",
    "predict",
    "train_epoch",
]
