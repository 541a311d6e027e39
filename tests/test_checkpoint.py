"""course_utils.checkpoint: complete round trips, RNG states, and saves that cannot destroy the last good file."""

from __future__ import annotations

import errno
import os
import random

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import checkpoint
from course_utils.checkpoint import (
    CheckpointError,
    atomic_save,
    capture_rng_state,
    check_writable,
    load_checkpoint,
    remove_temporary_files,
    restore_rng_state,
    save_checkpoint,
)


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
    path = save_checkpoint(
        tmp_path / "ck" / "last.pt",
        model,
        optimizer=optimizer,
        scheduler=scheduler,
        epoch=2,
        history=history,
        extra={"best": 0.75, "classes": ["a", "b"]},
    )
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
    return (
        torch.rand(3).tolist(),
        np.random.rand(3).tolist(),
        [random.random() for _ in range(3)],
        random.gauss(0, 1),
        torch.randperm(10, generator=generator).tolist(),
    )


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


# ----------------------------------------------------------------------------- issue 10, fault 5
@pytest.mark.parametrize(
    "value, what",
    [
        (np.float64(0.9), "numpy.float64"),
        (np.int64(3), "numpy.int64"),
        ("path", "PosixPath|WindowsPath"),
        (np.arange(3), "numpy.ndarray"),
    ],
)
def test_values_that_would_not_load_back_are_refused_at_save_time(tmp_path, value, what):
    if isinstance(value, str):
        value = tmp_path / "data"
    model = nn.Linear(2, 2)
    path = tmp_path / "last.pt"
    with pytest.raises(TypeError, match=rf"checkpoint\['extra'\]\['best'\].*({what}).*weights_only=True"):
        save_checkpoint(path, model, extra={"best": value})
    assert not path.exists() and list(tmp_path.iterdir()) == []  # nothing written, no temporary file
    save_checkpoint(path, model, extra={"best": float(np.float64(0.9)), "where": str(tmp_path)})  # converted: fine
    assert load_checkpoint(path)["extra"]["best"] == 0.9


def test_files_saved_the_notes_way_get_a_message_saying_what_they_are(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    torch.save(model, tmp_path / "whole.pt")
    with pytest.raises(CheckpointError, match=r"torch.Sequential|Sequential.*torch.save\(model\).*weights_only=False"):
        load_checkpoint(tmp_path / "whole.pt", model)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(CheckpointError, match=r"bare state_dict \(4 tensors.*model.load_state_dict\(torch.load"):
        load_checkpoint(tmp_path / "weights.pt", model)
    torch.save({"epoch": 3, "weights": [1.0]}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a course_utils checkpoint.*'epoch', 'weights'"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "cut.pt").write_bytes(save_checkpoint(tmp_path / "ok.pt", model).read_bytes()[:300])
    with pytest.raises(CheckpointError, match="damaged or incomplete"):
        load_checkpoint(tmp_path / "cut.pt")


def test_format_version_is_checked(tmp_path):
    model = nn.Linear(2, 2)
    state = torch.load(save_checkpoint(tmp_path / "a.pt", model), weights_only=True)
    state["format_version"] = 99
    torch.save(state, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format 99; this course_utils reads format 1"):
        load_checkpoint(tmp_path / "future.pt", model)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_follow_the_umask_like_any_new_file(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = save_checkpoint(tmp_path / "last.pt", nn.Linear(1, 1))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode


# ----------------------------------------------------------------------------- issue 10, faults 3 and 10
def test_an_interrupted_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", nn.Linear(4, 4), epoch=1)
    before = path.read_bytes()

    def half_then_die(fd, data):
        os.write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(checkpoint, "_write_all", half_then_die)
    with pytest.raises(OSError, match=r"could not write .*last.pt.*the previous last.pt is intact"):
        save_checkpoint(path, nn.Linear(4, 4), epoch=2)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_full_disk_says_so_and_that_the_previous_checkpoint_is_intact(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", nn.Linear(4, 4), epoch=1)

    def disk_full(fd, data):
        os.write(fd, bytes(data[:100]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint, "_write_all", disk_full)
    with pytest.raises(OSError, match="the disk is full.*the previous last.pt is intact.*resume=True") as info:
        save_checkpoint(path, nn.Linear(4, 4), epoch=2)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1 and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_stray_temporary_files_are_removed(tmp_path):
    keep = tmp_path / "notes.tmp"
    keep.write_text("not ours")
    strays = [tmp_path / ".last.pt.abcd1234.tmp", tmp_path / ".best.pt.k2j4_x9q.tmp"]
    for stray in strays:
        stray.write_bytes(b"PK half a checkpoint")
    assert sorted(remove_temporary_files(tmp_path)) == sorted(strays)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.tmp"]


def test_unwritable_folders_fail_before_anything_is_trained(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OSError, match=r"cannot write checkpoints to .*a_file.*nothing was trained"):
        check_writable(blocker / "run")
