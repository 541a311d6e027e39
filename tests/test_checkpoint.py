"""course_utils.checkpoint: complete round trips, RNG states, and saves that cannot destroy the last good file."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from course_utils.checkpoint import atomic_save, capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint


def make_objects(seed: int):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=20)
    for _ in range(3):
        loss = model(torch.randn(5, 4)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    return model, optimizer, scheduler


def test_round_trip_restores_model_optimizer_scheduler_and_history(tmp_path):
    model, optimizer, scheduler = make_objects(0)
    history = {"train_loss": [1.5, 1.25], "val_acc": [0.5, 0.75]}
    path = save_checkpoint(tmp_path / "ck" / "last.pt", model, optimizer=optimizer, scheduler=scheduler, epoch=2,
                           history=history, extra={"best": 0.75, "classes": ["a", "b"]})
    raw = torch.load(path, weights_only=True)  # plain tensors and values only
    assert raw["epoch"] == 2 and raw["history"] == history and raw["extra"]["classes"] == ["a", "b"]

    model2, optimizer2, scheduler2 = make_objects(1)
    state = load_checkpoint(path, model2, optimizer=optimizer2, scheduler=scheduler2)
    assert state["epoch"] == 2
    for (k, a), (_, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        assert torch.equal(a, b), k
    momentum = [optimizer.state[p]["momentum_buffer"] for p in model.parameters()]
    momentum2 = [optimizer2.state[p]["momentum_buffer"] for p in model2.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(momentum, momentum2))
    assert scheduler2.state_dict()["last_epoch"] == 3 and scheduler2.get_last_lr() == scheduler.get_last_lr()


def draw(generator: torch.Generator) -> tuple:
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)],
            random.gauss(0, 1), torch.randperm(10, generator=generator).tolist())


def test_rng_states_round_trip_through_weights_only_file(tmp_path):
    generator = torch.Generator().manual_seed(5)
    random.gauss(0, 1)  # leaves a cached Gaussian in Python's state
    atomic_save(capture_rng_state(generator), tmp_path / "rng.pt")
    first = draw(generator)
    draw(generator)  # move every generator on
    restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True), generator)
    assert draw(generator) == first


def test_crash_during_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, optimizer, _ = make_objects(0)
    path = tmp_path / "last.pt"
    save_checkpoint(path, model, optimizer=optimizer, epoch=1, history={"val_acc": [0.5]})
    before = path.read_bytes()

    def dies_halfway(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 only the first bytes of a checkpoint")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(path, model, optimizer=optimizer, epoch=2, history={"val_acc": [0.5, 0.6]})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary file left behind


def test_interrupt_during_save_also_cleans_up(tmp_path, monkeypatch):
    path = atomic_save({"epoch": 1}, tmp_path / "last.pt")

    def interrupted(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert len(list(tmp_path.iterdir())) == 1


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")
