"""Data-parallel training (数据并行) with ``torch.distributed``: torchrun's environment, the process group, shards.

``torchrun`` (and ``course_utils.launch.launch``, which starts processes from a notebook or a test) gives
every process of a run five environment variables:

- ``RANK``: this process's number, 0 .. WORLD_SIZE - 1, unique over all machines (rank 0 is the "main" one);
- ``WORLD_SIZE``: how many processes the run has;
- ``LOCAL_RANK``: this process's number on its own machine, i.e. which GPU it drives;
- ``MASTER_ADDR``, ``MASTER_PORT``: where rank 0 listens, so that the others can find it (the rendezvous).

``init_distributed`` reads them, picks the backend (``nccl`` between GPUs, ``gloo`` on CPUs) and the device
(``cuda:LOCAL_RANK``, else the CPU), and joins the process group; ``destroy_distributed`` (or the
``distributed()`` context manager) leaves it. Without those variables everything is a run of one process.

The rest is what ``fit`` and the course loaders use so that a script needs no change beyond wrapping its
model in ``DistributedDataParallel``: ``epoch_shard`` (which positions of an epoch this rank trains on),
``all_reduce_sum`` (metrics summed over ranks), ``run_on_main`` and ``check_all`` (rank 0 does the file work
and every rank raises the same error when something fails, instead of waiting forever for a dead peer),
``gather_objects`` and ``explain_peer_failure``. Every function works, trivially, without a process group.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from .checks import expect_bool, expect_callable, expect_int, expect_mapping, expect_number

T = TypeVar("T")
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
DEFAULT_TIMEOUT_S = 600.0  # a collective that waits longer than this for a peer raises instead of hanging
LAUNCH_HINT = (
    "start the processes with torchrun (e.g. `torchrun --nproc_per_node=2 script.py`), which sets all "
    f"of {', '.join(ENV_VARS)}, or unset them all to run as a single process"
)


class DistributedRunError(RuntimeError):
    """This process stops because another process of the run failed, died or stopped answering."""


@dataclass(frozen=True)
class DistEnv:
    """What torchrun told this process (see the module docstring)."""

    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int


def _int_var(environ: Mapping[str, str], name: str, low: int, high: int | None = None) -> int:
    raw = environ[name].strip()
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer; {LAUNCH_HINT}") from None
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name}={value} must be {bound}; {LAUNCH_HINT}")
    return value


def read_env(environ: Mapping[str, str] | None = None) -> DistEnv | None:
    """Read torchrun's variables; None when none of them is set (a plain single-process run).

    Args:
        environ: the environment to read (default ``os.environ``).

    Raises:
        ValueError: the environment is half set (some variables missing or empty), a value is not an
            integer, or RANK is not below WORLD_SIZE. The message names what is wrong and how to launch.
        TypeError: ``environ`` is not a mapping of names to str values.
    """
    environ = os.environ if environ is None else expect_mapping(environ, "environ", "variable names -> str values")
    for name in ENV_VARS:
        if name in environ and not isinstance(environ[name], str):
            raise TypeError(f"environ[{name!r}] must be a str, as environment variables are, got {environ[name]!r}")
    present = [name for name in ENV_VARS if environ.get(name, "").strip()]
    if not present:
        return None
    missing = [name for name in ENV_VARS if name not in present]
    if missing:
        raise ValueError(
            f"the torch.distributed environment is half set: {', '.join(present)} "
            f"{'is' if len(present) == 1 else 'are'} set but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not; {LAUNCH_HINT}"
        )
    world_size = _int_var(environ, "WORLD_SIZE", 1)
    return DistEnv(
        rank=_int_var(environ, "RANK", 0, world_size - 1),
        world_size=world_size,
        local_rank=_int_var(environ, "LOCAL_RANK", 0),
        master_addr=environ["MASTER_ADDR"].strip(),
        master_port=_int_var(environ, "MASTER_PORT", 1, 65535),
    )


def default_backend(device: torch.device | str) -> str:
    """``nccl`` for CUDA devices (GPU to GPU, over NVLink or InfiniBand where present), ``gloo`` otherwise.

    Raises:
        TypeError, ValueError: ``device`` is not a str or torch.device, or not a device this course knows.
    """
    from .device import _parse_device

    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a str or torch.device, got {device!r} ({type(device).__name__})")
    return "nccl" if _parse_device(device).type == "cuda" else "gloo"


def pick_device(env: DistEnv | None, device: torch.device | str | None = None) -> torch.device:
    """The device of this process: ``device`` (or ``COURSE_DEVICE``) if given, else ``cuda:LOCAL_RANK`` when CUDA
    exists, else the CPU; "cuda" without an index means ``cuda:LOCAL_RANK``.

    One process drives one GPU: under torchrun, LOCAL_RANK picks it. Apple's MPS has no backend for
    torch.distributed, so a distributed run there uses the CPU (say ``device="cpu"``; "mps" is refused).

    Raises:
        RuntimeError: LOCAL_RANK names a GPU this machine does not have, or ``device`` cannot join a process group.
        TypeError: ``env`` is not a DistEnv (what ``read_env`` returns) or None.
    """
    from .device import ENV_VAR, get_device

    if env is not None and not isinstance(env, DistEnv):
        raise TypeError(f"env must be a DistEnv (what read_env() returns) or None, got {type(env).__name__}")
    local_rank = env.local_rank if env is not None else 0
    if device is None:
        if env is None:
            return get_device()
        device = os.environ.get(ENV_VAR) or ("cuda" if torch.cuda.is_available() else "cpu")
    chosen = get_device(device)
    if env is not None and chosen.type not in ("cpu", "cuda"):
        raise RuntimeError(
            f"device {str(chosen)!r} cannot take part in torch.distributed (backends: nccl for "
            "CUDA, gloo for the CPU); pass device='cpu'"
        )
    if env is not None and chosen.type == "cuda" and chosen.index is None:
        chosen = torch.device("cuda", local_rank)
    if chosen.type == "cuda" and chosen.index >= torch.cuda.device_count():
        raise RuntimeError(
            f"LOCAL_RANK={local_rank} asks for {chosen} but this machine has "
            f"{torch.cuda.device_count()} GPU(s): start at most that many processes per machine "
            "(torchrun --nproc_per_node)"
        )
    return chosen


@dataclass(frozen=True)
class DistContext:
    """The run this process belongs to: its environment (None for a single process), backend and device."""

    env: DistEnv | None
    backend: str | None
    device: torch.device

    @property
    def rank(self) -> int:
        """This process's index among all processes, 0 .. world_size - 1 (0 without torchrun)."""
        return self.env.rank if self.env else 0

    @property
    def world_size(self) -> int:
        """How many processes train together (1 without torchrun)."""
        return self.env.world_size if self.env else 1

    @property
    def local_rank(self) -> int:
        """This process's index on its own machine: the GPU it uses (0 without torchrun)."""
        return self.env.local_rank if self.env else 0

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs, shows progress and writes checkpoints."""
        return self.rank == 0


def init_distributed(
    device: torch.device | str | None = None, *, backend: str | None = None, timeout: float = DEFAULT_TIMEOUT_S
) -> DistContext:
    """Join the process group described by torchrun's environment (a no-op for a single process).

    Args:
        device: this process's device; default ``cuda:LOCAL_RANK`` if CUDA is there, else the CPU (see ``pick_device``).
        backend: default ``default_backend(device)``: nccl for CUDA, gloo for the CPU.
        timeout: seconds a collective operation waits for the other processes before it raises
            (a dead or stuck peer then gives an error instead of a hang).

    Returns:
        A ``DistContext``; ``ctx.device`` is what to pass as ``device=`` and to ``DDP(device_ids=...)``.

    Raises:
        ValueError: the environment is half set or malformed (see ``read_env``); an unknown backend; a timeout
            that is not a positive number of seconds (checked even for a single process).
        RuntimeError: a process group is already initialised, or the device cannot be used.
    """
    if backend is not None and backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' (CPU), 'nccl' (CUDA) or None (pick from the device), got {backend!r}")
    if not expect_number(timeout, "timeout", minimum=0) > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    env = read_env()
    chosen = pick_device(env, device)
    if env is None:
        return DistContext(None, None, chosen)
    backend = backend or default_backend(chosen)
    if backend == "nccl" and chosen.type != "cuda":
        raise ValueError(f"the nccl backend needs CUDA devices, got {chosen}; use backend='gloo' on the CPU")
    if dist.is_initialized():
        raise RuntimeError(
            "a torch.distributed process group is already initialised in this process; call destroy_distributed() first"
        )
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)  # nccl and its collectives use the current device
    dist.init_process_group(
        backend,
        init_method="env://",
        rank=env.rank,
        world_size=env.world_size,
        timeout=datetime.timedelta(seconds=timeout),
        device_id=chosen if chosen.type == "cuda" else None,
    )
    return DistContext(env, backend, chosen)


def destroy_distributed() -> None:
    """Leave the process group if this process is in one (safe to call twice, or without one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def distributed(
    device: torch.device | str | None = None, *, backend: str | None = None, timeout: float = DEFAULT_TIMEOUT_S
) -> Iterator[DistContext]:
    """``with distributed() as ctx:`` joins the process group (``init_distributed``) and always leaves it."""
    ctx = init_distributed(device, backend=backend, timeout=timeout)
    try:
        yield ctx
    finally:
        destroy_distributed()


# ----------------------------------------------------------------------------- where am I?
def is_distributed() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """The number of processes in the run (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0, the process that logs, draws progress bars and writes checkpoints."""
    return rank() == 0


def _collective_device() -> torch.device:
    """Where tensors for a collective must live: the current GPU under nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """Wait until every process reaches this line (a no-op for a single process)."""
    if is_distributed():
        dist.barrier()


def all_reduce_sum(values: list[float]) -> list[float]:
    """Sum a few numbers over all processes (e.g. a loss sum and a sample count); as floats for one process.

    Raises:
        TypeError: ``values`` is not a list or tuple of real numbers (NaN and inf are summed like others).
    """
    if not isinstance(values, (list, tuple)) or not all(
        isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_)) for v in values
    ):
        raise TypeError(
            f"values must be a list of numbers (floats or ints; .item() of a one-value tensor), got {values!r:.80}"
        )
    values = [float(v) for v in values]
    if not is_distributed():
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=_collective_device())  # never on MPS: see pick_device
    dist.all_reduce(tensor)
    return tensor.tolist()


def gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj`` (picklable), in rank order, on every process; ``[obj]`` for a single process."""
    if not is_distributed():
        return [obj]
    found: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(found, obj)
    return found


def _expect_what(what: object, name: str = "what") -> None:
    if not isinstance(what, str):
        raise TypeError(f"{name} must be a str describing the step (e.g. 'writing the checkpoint'), got {what!r:.60}")


def run_on_main(fn: Callable[[], T], what: str) -> T:
    """Run ``fn()`` on rank 0 only (file-system work) and hand its result to every process.

    If it raises on rank 0, the same exception is raised on every rank, so no process waits for one
    that has stopped. ``what`` (e.g. "checking the checkpoint folder") only documents the call.
    """
    expect_callable(fn, "fn")
    _expect_what(what)
    if not is_distributed():
        return fn()
    payload: list[Any] = [None]
    if is_main_process():
        try:
            payload = [("ok", fn())]
        except Exception as err:  # noqa: BLE001 - handed to the other ranks, then raised below
            payload = [("error", err)]
    dist.broadcast_object_list(payload, src=0)
    status, value = payload[0]
    if status == "error":
        raise value
    return value


def check_all(error: BaseException | None, what: str) -> None:
    """Every process reports whether its part of ``what`` worked; if one failed, all raise.

    The failing process raises its own ``error``; the others raise a RuntimeError naming the failed
    rank(s) and their messages. Without a process group it just raises ``error`` if there is one.
    """
    if error is not None and not isinstance(error, BaseException):
        raise TypeError(f"error must be an exception instance or None, got {error!r:.60} ({type(error).__name__})")
    _expect_what(what)
    if not is_distributed():
        if error is not None:
            raise error
        return
    reports = gather_objects(None if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        raise error
    failed = [f"rank {r}: {report}" for r, report in enumerate(reports) if report is not None]
    if failed:
        raise DistributedRunError(
            f"rank {rank()}: stopping because another process failed while {what} (" + "; ".join(failed) + ")"
        )


def on_every_rank(fn: Callable[[], T], what: str) -> T:
    """Run ``fn()`` on every process; if it raises on any of them, every process raises (see ``check_all``)."""
    expect_callable(fn, "fn")
    _expect_what(what)
    try:
        value = fn()
    except Exception as err:  # noqa: BLE001 - reported to every process, then raised here
        check_all(err, what)
        raise
    check_all(None, what)
    return value


def epoch_shard(n: int, *, even: bool) -> slice | None:
    """This rank's positions in an epoch of ``n`` items, as DistributedSampler takes them: every
    ``world_size``-th position starting at ``rank``; None without a process group of several processes.

    Args:
        n: items in the epoch.
        even: cut the epoch to a multiple of the world size first, so every rank gets the same number of
            items (and of batches: DDP needs every rank to take the same number of steps). The few items
            left out are at the end of the epoch's order, so a shuffled loader leaves out others each epoch.
            False (evaluation): every item is used once; ranks may differ by one item.

    Raises:
        ValueError: fewer items than processes (some rank would get none), or n < 0.
        TypeError: n is not an integer, or even is not True or False.
    """
    n, even = expect_int(n, "n"), expect_bool(even, "even")
    if not is_distributed():
        return None
    r, w = rank(), world_size()
    if n < w:
        raise ValueError(f"{n} item(s) cannot be shared among {w} processes: every process needs at least one")
    return slice(r, n - n % w if even else n, w)


PEER_FAILURE_MARKS = (
    "connection reset",
    "connection closed",
    "broken pipe",
    "timed out",
    "timeout",
    "socket",
    "peer",
    "nccl communicator was aborted",
    "watchdog",
)


def explain_peer_failure(err: BaseException, where: str) -> BaseException:
    """A clearer error for a collective that failed because another process died or got stuck.

    Returns a ``DistributedRunError`` (raise it ``from err``) when ``err`` looks like a lost peer under a process
    group of several processes; otherwise ``err`` itself.
    """
    if not isinstance(err, BaseException):
        raise TypeError(f"err must be the exception caught, got {err!r:.60} ({type(err).__name__})")
    _expect_what(where, "where")
    text = str(err).lower()
    dist_error = getattr(dist, "DistError", ())
    if (
        isinstance(err, DistributedRunError)
        or not is_distributed()
        or not (isinstance(err, dist_error) or any(m in text for m in PEER_FAILURE_MARKS))
    ):
        return err
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return DistributedRunError(
        f"rank {rank()} of {world_size()}: lost contact with another process of this run {where} "
        f"({first_line[:300]}). Another process probably stopped (look for its own error above) or is stuck; "
        "this process stops too. Continue the run later with resume=True from its last checkpoint"
    )


__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ENV_VARS",
    "DistContext",
    "DistEnv",
    "DistributedRunError",
    "all_reduce_sum",
    "barrier",
    "check_all",
    "default_backend",
    "destroy_distributed",
    "distributed",
    "epoch_shard",
    "explain_peer_failure",
    "gather_objects",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "on_every_rank",
    "pick_device",
    "rank",
    "read_env",
    "run_on_main",
    "world_size",
]
