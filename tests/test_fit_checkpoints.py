"""fit's checkpoint folder (issue 10): nothing a user saved is overwritten or left inconsistent, and bad
settings fail before the first epoch, not after it."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import checkpoint
from course_utils.checkpoint import BEST, LAST, load_checkpoint
from course_utils.train import accuracy, fit


def loaders(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(48, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    train = DataLoader(
        TensorDataset(x[:32], y[:32]), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(1)
    )
    return train, DataLoader(TensorDataset(x[32:], y[32:]), batch_size=16)


def run(folder, epochs=3, *, resume=False, on_epoch_end=None, best_key="val_loss", val=True, metrics=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))
    train, valid = loaders()
    fit(
        model,
        train,
        nn.CrossEntropyLoss(),
        torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9),
        epochs,
        val_loader=valid if val else None,
        metrics=metrics,
        checkpoint_dir=folder,
        resume=resume,
        best_key=best_key,
        on_epoch_end=on_epoch_end,
        show_progress=False,
    )
    return model


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ----------------------------------------------------------------------------- fault 1
def test_a_mistyped_resume_path_is_an_error_and_overwrites_nothing(tmp_path):
    run(tmp_path, 3)
    saved = snapshot(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"lats.pt.*no such checkpoint.*best.pt.*last.pt.*nothing was"):
        run(tmp_path, 5, resume=tmp_path / "lats.pt")
    assert snapshot(tmp_path) == saved and load_checkpoint(tmp_path / LAST)["epoch"] == 3


def test_a_run_that_does_not_resume_a_folder_never_overwrites_it(tmp_path):
    run(tmp_path / "a", 2)
    saved = snapshot(tmp_path / "a")
    with pytest.raises(FileExistsError, match=r"already holds checkpoints of another run \(last.pt, best.pt, epoch 2"):
        run(tmp_path / "a", 3)  # resume=False
    run(tmp_path / "b", 1)
    with pytest.raises(FileExistsError, match="resume=True to continue"):
        run(tmp_path / "a", 3, resume=tmp_path / "b" / LAST)  # resumed, but another run's file
    assert snapshot(tmp_path / "a") == saved
    run(tmp_path / "a", 3, resume=True)
    assert load_checkpoint(tmp_path / "a" / LAST)["epoch"] == 3


# ----------------------------------------------------------------------------- fault 2
class Crash(BaseException):
    """Stands in for a kill: not an Exception, so nothing on the way catches it."""


def test_a_crash_between_the_two_writes_leaves_agreeing_files_and_resume_repairs_them(tmp_path, monkeypatch):
    reference = run(tmp_path / "whole", 2)
    real_write = checkpoint._write_atomic

    def die_before_last(data, path):
        if path.name == LAST and torch.load(path.parent / BEST, weights_only=True)["epoch"] == 2:
            raise Crash("killed between best.pt and last.pt")
        return real_write(data, path)

    monkeypatch.setattr(checkpoint, "_write_atomic", die_before_last)
    with pytest.raises(Crash):
        run(tmp_path / "cut", 2)
    monkeypatch.undo()
    best, last = load_checkpoint(tmp_path / "cut" / BEST), load_checkpoint(tmp_path / "cut" / LAST)
    # epoch 2 improved val_loss and is written to best.pt first: best.pt is one epoch *ahead*, and its history
    # extends last.pt's, so best.pt is the best epoch of the longest history either file holds
    assert (best["epoch"], last["epoch"]) == (2, 1)
    assert best["history"]["val_loss"][:1] == last["history"]["val_loss"]
    assert best["extra"]["best_epoch"] == 2
    resumed = run(tmp_path / "cut", 2, resume=True)  # nothing left to train: last.pt is brought up to best.pt
    assert load_checkpoint(tmp_path / "cut" / LAST)["epoch"] == 2
    assert (tmp_path / "cut" / LAST).read_bytes() == (tmp_path / "cut" / BEST).read_bytes()
    assert all(torch.equal(a, b) for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()))


# ----------------------------------------------------------------------------- fault 3
def test_fit_removes_what_a_killed_save_left(tmp_path):
    run(tmp_path, 1)
    stray = tmp_path / ".last.pt.0a1b2c3d.tmp"
    stray.write_bytes(b"PK\x03\x04 half of a checkpoint")
    run(tmp_path, 2, resume=True)
    assert not stray.exists() and sorted(p.name for p in tmp_path.iterdir()) == [BEST, LAST]


# ----------------------------------------------------------------------------- fault 4
@pytest.mark.parametrize(
    "kwargs, hint",
    [
        ({"best_key": "val_accuracy", "metrics": {"acc": accuracy}}, "Pass metrics={'accuracy'"),
        ({"best_key": "val_acc"}, r"Pass metrics=\{'acc'"),
        ({"best_key": "val_acc", "val": False, "metrics": {"acc": accuracy}}, "Pass val_loader="),
    ],
)
def test_a_best_key_that_would_never_be_logged_is_refused_before_training(tmp_path, kwargs, hint):
    calls = []
    with pytest.raises(ValueError, match=rf"best_key='val_acc\w*' would never be logged.*{hint}.*best_key=None"):
        run(tmp_path / "run", on_epoch_end=lambda *a: calls.append(a), **kwargs)
    assert calls == [] and not (tmp_path / "run").exists()


def test_best_key_none_keeps_only_last(tmp_path):
    run(tmp_path, 2, best_key=None, val=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST]
    assert load_checkpoint(tmp_path / LAST)["extra"]["best_key"] is None


def test_resuming_with_another_best_key_is_refused(tmp_path):
    run(tmp_path, 1)
    with pytest.raises(ValueError, match="checkpointed with best_key='val_loss'"):
        run(tmp_path, 2, resume=True, best_key="train_loss")


# ----------------------------------------------------------------------------- fault 10
def test_an_unwritable_checkpoint_folder_fails_before_the_first_epoch(tmp_path):
    (tmp_path / "runs").write_text("a file where the folder should be")
    calls = []
    with pytest.raises(OSError, match="cannot write checkpoints to .*nothing was trained yet"):
        run(tmp_path / "runs" / "07", on_epoch_end=lambda *a: calls.append(a))
    assert calls == []
