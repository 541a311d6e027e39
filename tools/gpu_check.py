"""Everything in the course that needs CUDA, in one command with one summary: ``make gpu-check``.

Run it whenever a GPU machine is available (the CPU-only ``make test`` cannot reach these paths):

1. the CUDA variants of the tests (``tests/test_precision_paths.py``: bf16, fp16 + GradScaler,
   channels_last, torch.compile, pinned memory; ``tests/test_device.py``; ``tests/test_distributed.py``);
2. notebook 07 under nbval on the GPU (fast mode: real CIFAR-10 if it is in data/, else the SYNTHETIC stand-in);
3. ``benchmarks/cifar_throughput.py --device cuda`` (the two input paths' training throughput);
4. ``scripts/train_cifar10.py`` under ``torchrun --nproc_per_node=<every visible GPU>`` (nccl, DDP), fast mode.

Each step has its own time limit so that the whole check stays within about 5 minutes; the summary lists
every step's result, time and key figure. Exit code 0 only if every step passed. Without CUDA it stops at
once with exit code 2 and says so (nothing here can run on a CPU).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BUDGET_S = 300  # the whole check


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def run_step(name: str, command: list[str], limit: float, env: dict[str, str], pick) -> dict:
    """Run one step with a time limit; ``pick(output)`` returns the key figure to show in the summary."""
    print(f"\n== {name}: {' '.join(command)}  (limit {limit:.0f} s)", flush=True)
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit)
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as err:
        output = (err.stdout or b"").decode(errors="replace") if isinstance(err.stdout, bytes) else (err.stdout or "")
        code = None
    seconds = time.perf_counter() - start
    print(output[-4000:], flush=True)
    status = "TIMEOUT" if code is None else ("ok" if code == 0 else f"FAILED (exit {code})")
    try:
        figure = pick(output) if code == 0 else (output.strip().splitlines() or [""])[-1][:160]
    except Exception as err:  # noqa: BLE001 - a summary line must not hide the step's own result
        figure = f"(could not read the figure: {err})"
    return {"step": name, "status": status, "seconds": seconds, "figure": figure}


def last_line_with(text: str, marker: str) -> str:
    lines = [line.strip() for line in text.splitlines() if marker in line]
    return lines[-1][:160] if lines else "(not printed)"


def main() -> int:
    n_gpus = gpu_count()
    if n_gpus == 0:
        print(
            "make gpu-check: no CUDA device is visible (torch.cuda.is_available() is False), so none of its checks "
            "can run here. Run it on a machine with an NVIDIA GPU and a CUDA build of torch (the project's uv.lock "
            "installs one on Linux x86-64); `make test` covers everything the CPU can.",
            file=sys.stderr,
        )
        return 2
    env = {**os.environ, "COURSE_DEVICE": "cuda", "COURSE_FAST": "1"}
    run_dir = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    steps = [
        (
            "CUDA tests",
            [
                PY,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/test_precision_paths.py",
                "tests/test_device.py",
                "tests/test_distributed.py",
            ],
            70,
            lambda out: last_line_with(out, "passed"),
        ),
        (
            "notebook 07 on the GPU (fast mode)",
            [
                PY,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--nbval-lax",
                "--nbval-current-env",
                "--nbval-cell-timeout=120",
                "notebooks/07_cifar10_pipeline.ipynb",
            ],
            110,
            lambda out: last_line_with(out, "passed"),
        ),
        (
            "throughput benchmark --device cuda",
            [PY, "benchmarks/cifar_throughput.py", "--device", "cuda", "--rounds", "2", "--steps", "20"],
            50,
            lambda out: last_line_with(out, "ratio course_utils / notes"),
        ),
        (
            f"train_cifar10.py under torchrun on {n_gpus} GPU(s)",
            [
                PY,
                "-m",
                "torch.distributed.run",
                "--standalone",
                f"--nproc_per_node={n_gpus}",
                "scripts/train_cifar10.py",
                "--epochs",
                "2",
                "--device",
                "cuda",
                "--run-dir",
                str(run_dir / "script"),
                "--timeout",
                "60",
            ],
            60,
            lambda out: _script_figure(run_dir / "script"),
        ),
    ]
    results, start = [], time.perf_counter()
    for name, command, limit, pick in steps:
        left = BUDGET_S - (time.perf_counter() - start)
        if left < 10:
            results.append({"step": name, "status": "SKIPPED (time budget spent)", "seconds": 0.0, "figure": ""})
            continue
        results.append(run_step(name, command, min(limit, left), env, pick))
    shutil.rmtree(run_dir, ignore_errors=True)
    import torch

    names = ", ".join(torch.cuda.get_device_name(i) for i in range(n_gpus))
    print(
        f"\n==== make gpu-check summary: {n_gpus} GPU(s): {names}; torch {torch.__version__}, CUDA {torch.version.cuda}"
    )
    for r in results:
        print(f"{r['status']:<28} {r['seconds']:6.1f} s  {r['step']}: {r['figure']}")
    total = time.perf_counter() - start
    passed = all(r["status"] == "ok" for r in results)
    print(
        f"{'PASSED' if passed else 'FAILED'}: {sum(r['status'] == 'ok' for r in results)} of {len(results)} steps "
        f"in {total:.0f} s (budget {BUDGET_S} s)"
    )
    return 0 if passed else 1


def _script_figure(run: Path) -> str:
    summary = json.loads((run / "summary.json").read_text())
    checkpoints = sorted(p.name for p in run.glob("*.pt"))
    return (
        f"world size {summary['world_size']} ({summary['backend']}), {summary['images_per_second']:.0f} images/s, "
        f"test acc {summary['test_acc_last']:.3f}{' [SYNTHETIC]' if summary['synthetic'] else ''}, {checkpoints}"
    )


if __name__ == "__main__":
    sys.exit(main())
