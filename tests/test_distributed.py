"""Data-parallel training (issue 14): fit and both loaders under torch.distributed, on the CPU with gloo.

Each multi-process test forks its processes from this one (``course_utils.launch``), so they start with
torch and DDP's imports already loaded: a launch costs about a second, not a fresh interpreter each.
One launch checks several things at once:

- the shards of both input paths are disjoint, cover the epoch, and equal each other;
- DDP training with a per-process batch B on 2 processes ends with the weights (and history) of one
  process training with batch 2B on the same data;
- only rank 0 draws progress bars and writes checkpoints; every process gets the same, reduced history;
- a run crashed after epoch 1 and resumed in fresh processes ends exactly where an uninterrupted run does,
  with each process's own random state (dropout) restored;
- a process that dies mid-run makes the others stop with a clear error, within a bounded time.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

import course_utils.data as cd
from course_utils import distributed
from course_utils.checkpoint import LAST, load_checkpoint
from course_utils.launch import LaunchError, launch
from course_utils.train import accuracy, fit

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks processes (Linux)")
N, B, EPOCHS, SIZE = 36, 4, 2, 8  # images, per-process batch, epochs, image side
TIMEOUT = 60  # seconds for any collective and any launch: a hang fails the test instead of stalling CI


def tiny_data() -> cd.ImageSplits:
    """N training images whose labels are their own ids (so shards can be read off the labels), 8 val, 8 test."""
    g = np.random.default_rng(0)
    images = g.integers(0, 256, size=(N + 16, SIZE, SIZE, 3), dtype=np.uint8)
    labels = np.concatenate([np.arange(N), np.arange(16) % 4])
    data = cd.ImageSplits(
        (images[:N], labels[:N]),
        (images[N : N + 8], labels[N : N + 8]),
        (images[N + 8 :], labels[N + 8 :]),
        [f"image {i}" for i in range(N)],
        name="tiny",
    )
    return data


def tiny_model(dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(4 * (SIZE // 2) ** 2, N),
    )


def train(
    model: nn.Module,
    batch: int,
    folder: Path | None,
    *,
    resume: bool = False,
    crash_after: int | None = None,
    show_progress: bool = False,
) -> dict:
    """2 epochs of momentum SGD with crop + flip augmentation through the device path; returns weights + history."""
    train_loader, val_loader, _ = cd.make_device_loaders(tiny_data(), batch, augment=True, seed=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def crash(epoch, history):
        if epoch == crash_after:
            raise KeyboardInterrupt(f"simulated crash after epoch {epoch}")

    try:
        history = fit(
            model,
            train_loader,
            nn.CrossEntropyLoss(),
            optimizer,
            EPOCHS,
            val_loader=val_loader,
            metrics={"acc": accuracy},
            checkpoint_dir=folder,
            resume=resume,
            best_key="val_loss",
            on_epoch_end=crash,
            show_progress=show_progress,
        )
    except KeyboardInterrupt:
        return {}
    plain = getattr(model, "module", model)
    return {"state": {k: v.clone() for k, v in plain.state_dict().items()}, "history": dict(history)}


def shards_seen() -> dict:
    """The image ids each path hands this process, per epoch, and whether both paths gave the same batches."""
    data = tiny_data()
    device_train = cd.make_device_loaders(data, B, augment=True, seed=5)[0]
    classic_train, classic_val, _ = cd.make_dataloaders(data, B, augment=True, seed=5)
    seen, same = [], True
    for _ in range(2):
        ids = []
        for (x_d, y_d), (x_c, y_c) in zip(device_train, classic_train, strict=True):
            same &= torch.equal(y_d, y_c) and torch.allclose(x_d, x_c, atol=1e-6)
            ids += y_d.tolist()
        seen.append(ids)
    return {
        "epochs": seen,
        "same_batches": same,
        "lengths": (len(device_train), len(classic_train)),
        "val_ids": [i for _, y in classic_val for i in y.tolist()],
    }


def first_launch(folder: str) -> dict:
    """Rank r's part of the first launch: shards, the DDP run, and a run that crashes after epoch 1."""
    folder = Path(folder)
    ctx = distributed.init_distributed(timeout=TIMEOUT)
    out = {"shards": shards_seen()}
    try:
        train(tiny_model(), B, None)
    except ValueError as err:
        out["unwrapped"] = str(err)
    ddp = nn.parallel.DistributedDataParallel(tiny_model())
    out["ddp"] = train(ddp, B, folder / "ddp", show_progress=True)
    for name, crash_after in (("whole", None), ("crashed", 1)):
        torch.manual_seed(100 + ctx.rank)  # each process its own dropout masks
        model = nn.parallel.DistributedDataParallel(tiny_model(dropout=0.3))
        out[name] = train(model, B, folder / name, crash_after=crash_after)
    return out


def resume_launch(folder: str) -> dict:
    """Fresh processes, other random states: continue the crashed run."""
    distributed.init_distributed(timeout=TIMEOUT)
    torch.manual_seed(999)
    model = nn.parallel.DistributedDataParallel(tiny_model(dropout=0.3))
    for p in model.parameters():  # a wrong starting point, which the checkpoint must overwrite
        p.data.fill_(0.5)
    return train(model, B, Path(folder) / "crashed", resume=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    start = time.perf_counter()
    first = launch(first_launch, 2, (str(folder),), timeout=TIMEOUT)
    resumed = launch(resume_launch, 2, (str(folder),), timeout=TIMEOUT)
    print(f"two launches of 2 processes: {time.perf_counter() - start:.1f} s")
    return folder, first, resumed


def test_shards_are_disjoint_cover_the_epoch_and_agree_between_paths(runs):
    _, first, _ = runs
    a, b = (r.value["shards"] for r in first)
    assert a["lengths"] == b["lengths"] == (N // 2 // B + 1,) * 2  # 18 images each: 4 full batches + 1 of 2
    for epoch in range(2):
        ids0, ids1 = a["epochs"][epoch], b["epochs"][epoch]
        assert len(ids0) == len(ids1) == N // 2
        assert set(ids0).isdisjoint(ids1) and sorted(ids0 + ids1) == list(range(N))
    assert a["epochs"][0] != a["epochs"][1], "a new order every epoch"
    assert a["same_batches"] and b["same_batches"], "DeviceLoader and the DataLoader path must shard alike"
    assert sorted(a["val_ids"] + b["val_ids"]) == sorted(tiny_data().val_labels.tolist())


def test_ddp_equals_one_process_with_the_global_batch(runs):
    folder, first, _ = runs
    single = train(tiny_model(), 2 * B, None)
    for result in first:
        ddp = result.value["ddp"]
        for name, ref in single["state"].items():
            torch.testing.assert_close(ddp["state"][name], ref, rtol=0, atol=1e-5)
        for key, values in single["history"].items():
            assert ddp["history"][key] == pytest.approx(values, rel=1e-5, abs=1e-6), key
    worst = max((first[0].value["ddp"]["state"][k] - v).abs().max().item() for k, v in single["state"].items())
    print(f"largest weight difference DDP (2 x {B}) vs one process ({2 * B}): {worst:.2e}")


def test_only_rank_0_logs_and_writes_checkpoints(runs):
    folder, first, _ = runs
    assert "epochs" in first[0].output and "epochs" not in first[1].output, "progress bar from rank 0 only"
    saved = load_checkpoint(folder / "ddp" / LAST)
    assert saved["epoch"] == EPOCHS and saved["extra"]["world_size"] == 2 and len(saved["extra"]["rng_per_rank"]) == 2
    assert "module." not in next(iter(saved["model"])), "the plain model's weights, not DDP's wrapper"
    assert sorted(p.name for p in (folder / "ddp").iterdir()) == ["best.pt", "last.pt"]


def test_resume_under_ddp_is_exact(runs):
    _, first, resumed = runs
    for rank in range(2):
        whole, again = first[rank].value["whole"], resumed[rank].value
        assert again["history"] == whole["history"]
        for name, tensor in whole["state"].items():
            assert torch.equal(again["state"][name], tensor), f"rank {rank}: {name} differs after resume"


def test_fit_refuses_a_model_without_ddp_in_a_run(runs):
    _, first, _ = runs
    for result in first:
        assert "every process would train its own copy" in result.value["unwrapped"]
        assert "DistributedDataParallel(model" in result.value["unwrapped"]


def test_a_checkpoint_of_another_world_size_is_refused(runs):
    folder, _, _ = runs
    with pytest.raises(ValueError, match="written by a run of 2 process"):
        train(tiny_model(dropout=0.3), B, folder / "whole", resume=True)


def dies_in_epoch_1() -> None:
    ctx = distributed.init_distributed(timeout=TIMEOUT)
    model = nn.parallel.DistributedDataParallel(tiny_model())
    steps = [0]

    def die_at_step_3(*args):
        steps[0] += 1
        if ctx.rank == 1 and steps[0] == 3:
            os._exit(3)  # no exception, no goodbye: like a killed process

    register_optimizer_step_post_hook(die_at_step_3)
    train(model, B, None)


def test_a_process_that_dies_stops_the_others_with_a_clear_error():
    start = time.perf_counter()
    with pytest.raises(LaunchError) as caught:
        launch(dies_in_epoch_1, 2, timeout=TIMEOUT, grace=TIMEOUT)
    seconds = time.perf_counter() - start
    err = caught.value
    assert err.exitcodes == [1, 3], str(err)
    assert "DistributedRunError" in err.errors[0] and "lost contact with another process" in err.errors[0]
    assert "in epoch 1" in err.errors[0] and "resume=True" in err.errors[0]
    assert seconds < TIMEOUT / 2, f"rank 0 needed {seconds:.1f} s to notice"
    print(f"rank 0 stopped {seconds:.1f} s after the launch:", err.errors[0].strip().splitlines()[-1][:200])


def raises_on_rank_1() -> None:
    ctx = distributed.init_distributed(timeout=TIMEOUT)
    distributed.on_every_rank(lambda: 1 / ctx.rank if ctx.rank == 0 else None, "dividing")


def test_an_error_on_one_rank_is_raised_on_every_rank():
    with pytest.raises(LaunchError) as caught:
        launch(raises_on_rank_1, 2, timeout=TIMEOUT)
    assert caught.value.exitcodes == [1, 1]
    assert "ZeroDivisionError" in caught.value.errors[0]
    assert "another process failed while dividing (rank 0: ZeroDivisionError" in caught.value.errors[1]


# ----------------------------------------------------------------------------- one process, no launch
def test_read_env_single_process_full_and_half_set():
    assert distributed.read_env({}) is None
    full = {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}
    assert distributed.read_env(full) == distributed.DistEnv(1, 4, 1, "node0", 29500)
    with pytest.raises(
        ValueError,
        match=r"half set: RANK, WORLD_SIZE are set but LOCAL_RANK, MASTER_ADDR, "
        r"MASTER_PORT are not; start the processes with torchrun",
    ):
        distributed.read_env({"RANK": "0", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match=r"RANK=4 must be in \[0, 3\]"):
        distributed.read_env({**full, "RANK": "4"})
    with pytest.raises(ValueError, match="WORLD_SIZE='two' is not an integer"):
        distributed.read_env({**full, "WORLD_SIZE": "two"})


def test_init_distributed_without_torchrun_is_one_process(monkeypatch):
    for name in distributed.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    ctx = distributed.init_distributed(device="cpu")
    assert (ctx.rank, ctx.world_size, ctx.backend, ctx.is_main) == (0, 1, None, True)
    assert not distributed.is_distributed() and distributed.epoch_shard(10, even=True) is None
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match="half set"):
        distributed.init_distributed(device="cpu")


def test_backend_and_device_choice(monkeypatch):
    assert distributed.default_backend("cuda:1") == "nccl" and distributed.default_backend("cpu") == "gloo"
    env = distributed.DistEnv(1, 2, 1, "127.0.0.1", 29500)
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    if not torch.cuda.is_available():
        assert distributed.pick_device(env) == torch.device("cpu")
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            distributed.pick_device(env, "cuda")
    monkeypatch.setattr("course_utils.device._mps_available", lambda: True)
    with pytest.raises(RuntimeError, match="cannot take part in torch.distributed"):
        distributed.pick_device(env, "mps")


# ----------------------------------------------------------------------------- the training script
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_cifar10.py"


def load_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_cifar10", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script_in_child(argv: list[str], log_dir: str) -> int:
    """What torchrun runs in each process: the script's entry point, printing into ``log_dir/rank<RANK>.log``
    (set here, not by the launcher's redirects: under pytest's capture those miss file descriptors 1 and 2)."""
    log = open(os.path.join(log_dir, f"rank{os.environ['RANK']}.log"), "ab", buffering=0)  # noqa: SIM115
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the log, not pytest's capture
    return load_script().run(argv)


def test_script_help_answers_without_importing_torch():
    import subprocess

    start = time.perf_counter()
    out = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--batch-size" in out.stdout and "torchrun --nproc_per_node" in out.stdout
    for flag in ("--model", "--recipe", "--epochs", "--data", "--run-dir", "--resume"):
        assert flag in out.stdout
    assert time.perf_counter() - start < 10, "--help should not wait for torch to import"


def test_script_under_torchrun_with_2_processes_writes_one_checkpoint(tmp_path):
    """torchrun's own launcher (elastic_launch, what the torchrun command runs), with 2 processes forked from
    this one instead of 2 fresh interpreters: the script's code path is the same, minus seconds of imports."""
    import json
    import signal

    import torch._dynamo  # noqa: F401 - DDP imports it: once here, not in each forked process
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)}
    (tmp_path / "logs").mkdir()
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=2,
        run_id="script",
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",
        start_method="fork",
        max_restarts=0,
        monitor_interval=0.05,
        logs_specs=DefaultLogsSpecs(log_dir=str(tmp_path / "elastic")),
    )
    argv = [
        "--epochs",
        "1",
        "--sizes",
        "256",
        "32",
        "32",
        "--batch-size",
        "16",
        "--run-dir",
        str(tmp_path / "run"),
        "--timeout",
        str(TIMEOUT),
    ]
    try:
        codes = elastic_launch(config, script_in_child)(argv, str(tmp_path / "logs"))
    finally:
        for sig, handler in handlers.items():  # the launcher leaves its own handlers installed
            signal.signal(sig, handler)
    logs = {rank: (tmp_path / "logs" / f"rank{rank}.log").read_text(errors="replace") for rank in (0, 1)}
    assert codes == {0: 0, 1: 0}, logs
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best.pt", "last.pt", "summary.json"]
    saved = load_checkpoint(tmp_path / "run" / LAST)
    assert saved["epoch"] == 1 and saved["extra"]["world_size"] == 2
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["global_batch"] == 32 and summary["synthetic"] is True
    assert "processes: 2 (gloo)" in logs[0] and "[SYNTHETIC]" in logs[0] and "test accuracy" in logs[0]
    assert "test accuracy" not in logs[1] and "epochs" not in logs[1], "rank 1 prints nothing of its own"
