"""Exercise references for notebook 08 (data-parallel training)."""

from __future__ import annotations

import math

import torch

from ..exercises import exercise


@exercise(
    "08.1",
    title="Ring all-reduce traffic",
    kind="predict",
    rtol=0.01,
    atol=0.0,
    hints=(
        "Each worker's tensor is cut into K chunks of M/K bytes. How many chunks does one worker send in "
        "the reduce-scatter, and how many in the all-gather?",
        "In every step of the ring each of the K workers sends one chunk, so one step moves M bytes in all; "
        "count the steps.",
    ),
)
def ring_traffic() -> list[float]:
    """[MB per GPU, MB for all 8] for a 100 MB tensor: K(K-1) chunk sends of M/K, counted per step."""
    k, megabytes = 8, 100.0
    steps = 2 * (k - 1)  # reduce-scatter then all-gather
    total = steps * k * (megabytes / k)  # every step: K messages of one chunk each
    return [total / k, total]


def _shard_cases():
    for n, world_size, epoch, seed in ((10, 2, 0, 0), (37, 4, 3, 5), (64, 8, 1, 2), (9, 3, 7, 0)):
        for rank in range(world_size):
            yield (n, rank, world_size, epoch), {"seed": seed}


@exercise(
    "08.2",
    title="Find the bug in the epoch shard",
    kind="debug",
    atol=0.0,
    rtol=0.0,
    calls=_shard_cases,
    hints=(
        "Call it for rank 0 and rank 1 of 2 with n=10 and put the two results together: are all ten images "
        "there, once each?",
        "The ranks can only split one order between them if they all draw the same order. What makes "
        "their orders differ?",
    ),
)
def epoch_shard_reference(n: int, rank: int, world_size: int, epoch: int, seed: int = 0) -> torch.Tensor:
    """One shared order per epoch, cut into rows of world_size: rank r takes column r."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
    usable = n - n % world_size
    return order[:usable].reshape(-1, world_size)[:, rank]


@exercise(
    "08.3",
    title="Global statistics from per-process statistics",
    kind="understanding",
    atol=1e-6,
    hints=(
        "The global mean is not the plain mean of the three means: a shard of 16 values counts twice as "
        "much as a shard of 8.",
        "From a shard's count, mean and variance you can recover its sum and its sum of squares, which "
        "simply add up over shards (that is what the notebook's sync_batch_norm adds).",
    ),
)
def global_statistics(counts: torch.Tensor, means: torch.Tensor, variances: torch.Tensor) -> torch.Tensor:
    """[mean, biased variance] of the union, by the law of total variance (within + between shards)."""
    counts, means, variances = (t.double() for t in (counts, means, variances))
    n = counts.sum()
    mean = (counts * means).sum() / n
    within = (counts * variances).sum() / n
    between = (counts * (means - mean) ** 2).sum() / n
    return torch.stack([mean, within + between])


@exercise(
    "08.4",
    title="Steps per epoch and the linear scaling rule",
    kind="understanding",
    atol=1e-9,
    rtol=1e-9,
    hints=(
        "On 8 GPUs each process sees an eighth of the images per epoch, in batches of 64.",
        "The linear scaling rule keeps the learning rate per image constant: the global batch grew by which factor?",
    ),
)
def scaling(images: int, batch: int, gpus: int, lr: float) -> list[float]:
    """[ceil(N / B), ceil((N // K) / B), K * lr], the first two counted with integer arithmetic."""
    per_process = images // gpus
    return [-(-images // batch), -(-per_process // batch), math.prod((gpus, lr))]
