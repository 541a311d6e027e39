"""Start a small torch.distributed run from Python: a notebook or a test, where ``torchrun`` would start a script.

``launch(fn, nprocs=2)`` starts ``nprocs`` processes on this machine and gives each the environment
torchrun would (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1, a free MASTER_PORT), so ``fn`` calls
``course_utils.distributed.init_distributed()`` exactly as a script does under torchrun. It returns what
every process returned and what it printed.

Processes are *forked* where the system can (Linux, macOS): a forked child starts with everything the
parent already imported (torch, DDP's dependencies), which saves seconds per process, and it can run a
function defined in a notebook. Where only ``spawn`` exists (Windows), ``fn`` must live in an importable
module. Each child prints into its own log (returned as ``RankResult.output``), never into the notebook: a
forked child must not touch the parent's Jupyter connection. Like torchrun, each child computes with one
CPU thread by default, so that ``nprocs`` processes do not fight over the cores.

When a process fails, the others get ``grace`` seconds to notice it and stop with their own error (a
collective raises when its peer is gone), then are terminated; ``launch`` then raises ``LaunchError`` with
every rank's exit code and the end of its log. A run that outlasts ``timeout`` is killed the same way.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checks import expect_callable, expect_mapping, expect_number, expect_positive_int


@dataclass
class RankResult:
    """What one process of a ``launch`` returned and printed (stdout and stderr together)."""

    rank: int
    value: Any
    output: str


class LaunchError(RuntimeError):
    """A launched process failed, or the run outlasted its timeout.

    Attributes:
        exitcodes: per rank: 0 ok, 1 an exception (see ``errors``), negative: killed by that signal.
        errors: per rank: the traceback of its exception, or "".
        outputs: per rank: what it printed.
    """

    def __init__(self, message: str, exitcodes: list[int | None], errors: list[str], outputs: list[str]) -> None:
        super().__init__(message)
        self.exitcodes, self.errors, self.outputs = exitcodes, errors, outputs


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for MASTER_PORT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_start_method() -> str:
    """``fork`` where the system has it (Linux, macOS), else ``spawn``."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _child(rank: int, fn: Callable[..., Any], args: tuple, env: dict[str, str], folder: str, threads: int) -> None:
    """Body of one launched process: torchrun's variables, its own log, one result file or one error file."""
    log = open(os.path.join(folder, f"rank{rank}.log"), "ab", buffering=0)  # noqa: SIM115 - lives as long as the process
    os.dup2(log.fileno(), 1)  # C-level output too (gloo's warnings)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    os.environ.update(env)
    os.environ["RANK"] = os.environ["LOCAL_RANK"] = str(rank)
    import torch

    torch.set_num_threads(threads)
    code = 0
    try:
        value = fn(*args)
        with open(os.path.join(folder, f"rank{rank}.result"), "wb") as f:
            pickle.dump(value, f)
    except BaseException:  # noqa: BLE001 - reported to the parent through the error file
        code = 1
        text = traceback.format_exc()
        sys.stderr.write(text)
        with open(os.path.join(folder, f"rank{rank}.error"), "w", encoding="utf-8") as f:
            f.write(text)
    finally:
        from .distributed import destroy_distributed

        try:
            destroy_distributed()  # a function that forgot to leave its process group
        except Exception:  # noqa: BLE001 - the process ends anyway
            pass
        sys.stdout.flush()
    sys.exit(code)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def _stop(processes: list[Any]) -> None:
    for p in processes:
        if p.exitcode is None:
            p.terminate()  # SIGTERM, as torchrun sends
    deadline = time.monotonic() + 5
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.exitcode is None:
            p.kill()
            p.join(5)


def _describe(code: int | None) -> str:
    if code is None:
        return "still running (killed)"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return "ok" if code == 0 else f"exit code {code}"


def launch(
    fn: Callable[..., Any],
    nprocs: int = 2,
    args: tuple = (),
    *,
    timeout: float = 300.0,
    grace: float = 10.0,
    threads: int = 1,
    start_method: str | None = None,
    env: dict[str, str] | None = None,
) -> list[RankResult]:
    """Run ``fn(*args)`` in ``nprocs`` processes that form one torch.distributed run (torchrun's environment).

    Args:
        fn: what every process runs; it calls ``init_distributed()`` itself. Its return value must pickle.
        nprocs: the world size (all on this machine: LOCAL_RANK = RANK).
        args: positional arguments, the same for every process (each reads its rank from the environment).
        timeout: seconds for the whole run; then every process is killed and LaunchError raised.
        grace: seconds the other processes get to stop by themselves after one failed.
        threads: torch CPU threads per process (``torch.set_num_threads``).
        start_method: "fork" or "spawn" (default ``default_start_method()``).
        env: more environment variables for the children.

    Returns:
        One ``RankResult(rank, value, output)`` per process, in rank order.

    Raises:
        LaunchError: a process raised, died or outlasted ``timeout`` (message: each rank's fate and last lines).
        ValueError: ``fn`` cannot reach a spawned process (defined in a notebook or script's ``__main__``); a
            start method this system lacks; a timeout that is not positive, or a negative grace.
        TypeError: ``fn`` is not callable, ``args`` not a tuple, ``env`` not a dict of str -> str, or nprocs,
            threads, timeout or grace of the wrong type. All of this is checked before any process starts.
    """
    expect_callable(fn, "fn")
    nprocs, threads = expect_positive_int(nprocs, "nprocs"), expect_positive_int(threads, "threads")
    if not isinstance(args, tuple):
        raise TypeError(f"args must be a tuple of positional arguments, e.g. (x,), got {args!r:.60}")
    if not expect_number(timeout, "timeout", minimum=0) > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    expect_number(grace, "grace", minimum=0)
    for name, value in expect_mapping({} if env is None else env, "env", "variable names -> str values").items():
        if not (isinstance(name, str) and isinstance(value, str)):
            raise TypeError(f"env must map str names to str values, got {name!r}: {value!r:.60}")
    if start_method is not None and start_method not in multiprocessing.get_all_start_methods():
        raise ValueError(
            f"start_method must be one of {multiprocessing.get_all_start_methods()} or None, got {start_method!r}"
        )
    method = start_method or default_start_method()
    if method == "spawn" and getattr(fn, "__module__", None) == "__main__":
        raise ValueError(
            f"{getattr(fn, '__name__', fn)!r} is defined in __main__ (a notebook or the script itself), "
            "which a spawned process cannot import: move it into a .py module, or use torchrun"
        )
    if method == "fork":
        import torch._dynamo  # noqa: F401 - DDP's constructor imports it (seconds): once here, not in every child
    folder = Path(tempfile.mkdtemp(prefix="course-launch-"))
    child_env = {
        "WORLD_SIZE": str(nprocs),
        "LOCAL_WORLD_SIZE": str(nprocs),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "OMP_NUM_THREADS": str(threads),
        **(env or {}),
    }
    context = multiprocessing.get_context(method)
    processes = [
        context.Process(target=_child, args=(r, fn, args, child_env, str(folder), threads), daemon=False)
        for r in range(nprocs)
    ]
    try:
        for p in processes:
            p.start()
        deadline, failed_at, timed_out = time.monotonic() + timeout, None, False
        while any(p.exitcode is None for p in processes):
            now = time.monotonic()
            if failed_at is None and any(p.exitcode not in (None, 0) for p in processes):
                failed_at = now
            if now > deadline or (failed_at is not None and now > failed_at + grace):
                timed_out = now > deadline
                _stop(processes)
                break
            time.sleep(0.02)
        codes = [p.exitcode for p in processes]
        outputs = [_read(folder / f"rank{r}.log") for r in range(nprocs)]
        errors = [_read(folder / f"rank{r}.error") for r in range(nprocs)]
        if timed_out or any(code != 0 for code in codes):
            lines = []
            for r, code in enumerate(codes):
                last = (errors[r] or outputs[r]).strip().splitlines()[-1:] or ["(no output)"]
                lines.append(f"  rank {r}: {_describe(code)}: {last[0][:400]}")
            head = (
                f"the run did not finish within timeout={timeout} s"
                if timed_out
                else f"{sum(c != 0 for c in codes)} of {nprocs} processes failed"
            )
            raise LaunchError(f"{head}:\n" + "\n".join(lines), codes, errors, outputs)
        results = []
        for r in range(nprocs):
            with open(folder / f"rank{r}.result", "rb") as f:
                results.append(RankResult(r, pickle.load(f), outputs[r]))  # noqa: S301 - written by our own child
        return results
    finally:
        _stop(processes)
        shutil.rmtree(folder, ignore_errors=True)


__all__ = ["LaunchError", "RankResult", "default_start_method", "free_port", "launch"]
