"""No course_utils code path makes a float64 tensor (issue 9): Apple's MPS backend has no float64, so one
``.double()`` in a training step or a beam-search step breaks the course on a Mac.

``NoFloat64`` sees every ATen operation that runs (forward, backward, factories, copies) and records each
one whose result is float64. CI has no MPS device, so the guard runs the representative calls on the CPU
and refuses float64 everywhere; host-side Python floats are fine. Other modules can reuse it:
``with NoFloat64() as guard: ...; guard.check()``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import course_utils.epoch as epoch
from course_utils.attention import (
    MultiHeadAttention,
    causal_mask,
    scaled_dot_product_attention,
    sinusoidal_positional_encoding,
)
from course_utils.checkpoint import load_checkpoint, save_checkpoint
from course_utils.decoding import beam_search, greedy_search, length_penalty
from course_utils.number_words import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    NumberBatches,
    Seq2SeqTransformer,
    encode_numbers,
    exact_match,
    make_step_fn,
)
from course_utils.train import accuracy, evaluate, fit, predict


class NoFloat64(TorchDispatchMode):
    """Record every operation that returns a float64 tensor while active; ``check()`` fails listing them."""

    def __init__(self) -> None:
        super().__init__()
        self.offenders: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if any(isinstance(t, torch.Tensor) and t.dtype == torch.float64 for t in tree_flatten(out)[0]):
            self.offenders.append(str(func))
        return out

    def check(self) -> None:
        assert not self.offenders, f"float64 tensors made by: {sorted(set(self.offenders))}"


def test_the_guard_catches_float64():
    with NoFloat64() as guard:
        torch.ones(2).double()
        torch.tensor([0.5], dtype=torch.float64)
    assert len(guard.offenders) == 2


def loaders():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 3, 8, 8, generator=g), torch.randint(0, 4, (40,), generator=g)
    batches = [(x[i : i + 10], y[i : i + 10]) for i in range(0, 40, 10)]
    return batches[:3], batches[3:]


def test_training_evaluation_and_checkpoints_make_no_float64(tmp_path, monkeypatch):
    # the autocast path, forced on the CPU. Not float16 + GradScaler: that path only runs on CUDA GPUs without
    # bf16 (course_utils never autocasts on MPS), and torch's own GradScaler.unscale_ computes 1/scale in float64
    monkeypatch.setattr(epoch, "autocast_dtype", lambda device: torch.bfloat16)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(256, 4))
    train_batches, val_batches = loaders()
    with NoFloat64() as guard:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=6)
        fit(
            model,
            train_batches,
            nn.CrossEntropyLoss(label_smoothing=0.1),
            opt,
            2,
            val_loader=val_batches,
            metrics={"acc": accuracy},
            scheduler=sched,
            scheduler_interval="step",
            amp=True,
            channels_last=True,
            checkpoint_dir=tmp_path,
            show_progress=False,
        )
        evaluate(model, val_batches, nn.CrossEntropyLoss(), metrics={"acc": accuracy}, amp=True)
        predict(model, val_batches, amp=True)
        save_checkpoint(tmp_path / "extra.pt", model, optimizer=opt, epoch=2, extra={"best": 0.5})
        load_checkpoint(tmp_path / "last.pt", model, optimizer=opt, scheduler=sched, restore_rng=True)
    guard.check()


def test_the_seq2seq_model_decoding_and_attention_make_no_float64():
    torch.manual_seed(0)
    model = Seq2SeqTransformer(d_model=16, num_heads=2, num_layers=1, dim_feedforward=32)
    numbers = [7, 342, 999]

    def step(model, batch):
        src, tgt_in, tgt_out = batch
        return nn.functional.cross_entropy(model(src, tgt_in).flatten(0, 1), tgt_out.flatten(), ignore_index=PAD_ID)

    with NoFloat64() as guard:
        fit(
            model,
            NumberBatches(list(range(30)), batch_size=10),
            optimizer=torch.optim.AdamW(model.parameters()),
            epochs=1,
            step=step,
            show_progress=False,
        )
        state, step_fn = encode_numbers(model, numbers), make_step_fn(model)
        search = {"bos_id": BOS_ID, "eos_id": EOS_ID, "max_len": 6}
        greedy = greedy_search(step_fn, state, **search)
        beam = beam_search(step_fn, state, beam_size=3, n_best=2, alpha=0.6, **search)
        exact_match(beam.best(), numbers) + exact_match(greedy.best(), numbers)
        length_penalty(beam.lengths, 1.0)
        q = torch.randn(2, 5, 8)
        mha = MultiHeadAttention(8, 2)
        mha(q, q, q, causal_mask(5)[None, None]).sum().backward()
        scaled_dot_product_attention(q, q, q, causal_mask(5))
        sinusoidal_positional_encoding(10, 8)
    guard.check()


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_length_penalty_values_are_those_of_the_formula(alpha):
    lengths = torch.tensor([[0, 1, 4], [9, 2, 30]])
    expected = torch.tensor([[((5 + n) / 6) ** alpha for n in row] for row in lengths.tolist()])
    with NoFloat64() as guard:
        got = length_penalty(lengths, alpha)
    guard.check()
    assert got.dtype == torch.float32 and torch.equal(got, expected)  # double precision on the host, then rounded
