"""Crash test (issue 10): SIGKILL a training process at random moments, inside checkpoint saves too.

A tiny run (6 epochs, ``last.pt`` + ``best.pt`` every epoch) is forked from this process (no new imports,
so the test takes seconds) and killed again and again; every new process resumes from what the last one
left. After each kill both checkpoints must load and agree, and no temporary file of a killed save may
survive the next run; the final resumed run must end with the uninterrupted run's weights, bit for bit.

Kill moments, drawn from a seeded generator: in the middle of a training step, half-way through writing a
checkpoint's bytes, after the bytes are written but before the rename, right after a rename (between
``best.pt`` and ``last.pt``), and at a random time chosen by this process.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils.data import DataLoader, TensorDataset

from course_utils import checkpoint
from course_utils.checkpoint import BEST, LAST, load_checkpoint
from course_utils.train import fit

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks training processes (Linux)")
EPOCHS = 6
KILLS = ["step", "write", "rename", "renamed", "timer", "write", "renamed", "timer"]


def train(folder: Path, resume: bool, epochs: int = EPOCHS) -> nn.Module:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 6, generator=g)
    y = (x[:, :3].sum(1) > 0).long()
    loader = DataLoader(
        TensorDataset(x[:32], y[:32]), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(1)
    )
    model = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 2))
    fit(
        model,
        loader,
        nn.CrossEntropyLoss(),
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        epochs,
        val_loader=DataLoader(TensorDataset(x[32:], y[32:]), batch_size=16),
        checkpoint_dir=folder,
        resume=resume,
        best_key="val_loss",
        show_progress=False,
    )
    return model


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def child(folder: Path, kind: str, at: int, fraction: float) -> None:
    """Resume the run in ``folder`` and SIGKILL this very process at the ``at``-th event of ``kind``."""
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the process never closes anything
    count = [0]

    def reached() -> bool:
        count[0] += 1
        return count[0] == at

    if kind == "step":
        register_optimizer_step_post_hook(lambda *args: reached() and _die())
    elif kind == "write":

        def half_write(fd, data, real=checkpoint._write_all):
            if reached():
                os.write(fd, bytes(memoryview(data)[: int(len(data) * fraction)]))
                _die()
            real(fd, data)

        checkpoint._write_all = half_write
    elif kind in ("rename", "renamed"):

        def replace(src, dst, real=os.replace):
            if kind == "rename" and reached():
                _die()  # the temporary file is complete on disk, the name still points at the old file
            real(src, dst)
            if kind == "renamed" and reached():
                _die()  # e.g. best.pt renamed, last.pt not written yet

        os.replace = replace
    train(folder, resume=True)


def check_agreement(folder: Path) -> dict:
    """Both checkpoints load; best.pt is the best epoch of the longer history, which extends the other one."""
    files = {name: load_checkpoint(folder / name) for name in (LAST, BEST) if (folder / name).exists()}
    if LAST in files:
        assert BEST in files, "epoch 1 always writes best.pt before last.pt"
    if BEST not in files:
        return files
    longer, shorter = sorted(files.values(), key=lambda s: s["epoch"], reverse=True)[0], files[BEST]
    for state in files.values():
        assert state["history"]["val_loss"] == longer["history"]["val_loss"][: state["epoch"]], "histories diverge"
    losses = longer["history"]["val_loss"]
    best_epoch = min(range(len(losses)), key=lambda i: (losses[i], i)) + 1
    assert shorter["epoch"] == best_epoch == files[BEST]["extra"]["best_epoch"], "best.pt is not the best epoch"
    return files


def temporary_files(folder: Path) -> set[str]:
    return {p.name for p in folder.glob(".*.tmp")}


def test_kills_at_random_moments_lose_nothing(tmp_path):
    train(tmp_path / "warm-up", resume=False, epochs=1)  # a process's first run pays one-off costs: not timed
    start = time.perf_counter()
    reference = train(tmp_path / "whole", resume=False)
    duration = time.perf_counter() - start
    folder = tmp_path / "killed"
    rng = random.Random(2024)
    context = multiprocessing.get_context("fork")
    kills = inside_saves = 0
    leftovers: set[str] = set()
    log: list[str] = []
    for kind in KILLS:
        at, fraction = rng.randint(1, 3), rng.uniform(0.05, 0.95)
        process = context.Process(target=child, args=(folder, kind, at, fraction))
        process.start()
        if kind == "timer":  # a random moment within the epochs still to train
            done = load_checkpoint(folder / LAST)["epoch"] if (folder / LAST).exists() else 0
            process.join(rng.uniform(0.05, 0.9) * duration * (EPOCHS - done) / EPOCHS)
            if process.exitcode is None:
                os.kill(process.pid, signal.SIGKILL)
        process.join(60)
        assert process.exitcode is not None, "a training process hung"
        if kind != "timer":  # (a timer may kill a run before it even starts; events come after its clean-up)
            assert not leftovers & temporary_files(folder), "a temporary file of a killed save survived the next run"
        if process.exitcode == 0:  # it finished before its kill moment
            break
        assert process.exitcode == -signal.SIGKILL, f"training process failed with exit code {process.exitcode}"
        kills += 1
        leftovers = temporary_files(folder)
        inside_saves += kind in ("write", "rename", "renamed") or bool(leftovers)
        files = check_agreement(folder)
        log.append(f"{kind}: epochs {sorted(s['epoch'] for s in files.values())}, {len(leftovers)} temp")
    assert kills >= 5 and inside_saves >= 3, log
    resumed = train(folder, resume=True)
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs from the uninterrupted run"
    files = check_agreement(folder)
    assert files[LAST]["epoch"] == EPOCHS and temporary_files(folder) == set()
    best_ref = load_checkpoint(tmp_path / "whole" / BEST)
    assert files[BEST]["epoch"] == best_ref["epoch"]
    assert all(torch.equal(best_ref["model"][k], files[BEST]["model"][k]) for k in best_ref["model"])
    print(f"{kills} kills, {inside_saves} inside checkpoint saves; resumed run == uninterrupted run;", log)
