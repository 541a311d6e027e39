"""Notebook 08's from-scratch data-parallel code (its ``# export`` cells) against PyTorch, on new inputs."""

from __future__ import annotations

import pytest
import torch
from nbcode import load_exports
from torch import nn

nb = load_exports("08_data_parallel_training")


@pytest.mark.parametrize("K", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("shape", [(7,), (4, 6), (2, 3, 5)])
def test_ring_all_reduce_sums_on_every_worker(K, shape):
    g = torch.Generator().manual_seed(K)
    tensors = [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(K)]
    originals = [t.clone() for t in tensors]
    sums, sent = nb.ring_all_reduce(tensors)
    expected = torch.stack(originals).sum(dim=0)
    for s in sums:
        assert s.shape == expected.shape
        torch.testing.assert_close(s, expected)
    assert all(torch.equal(t, o) for t, o in zip(tensors, originals)), "the inputs are left alone"
    numel = expected.numel()
    assert sum(sent) == 2 * (K - 1) * numel * 8  # every step moves each chunk once
    chunk = -(-numel // K) * 8  # the largest chunk
    assert all(b <= 2 * (K - 1) * chunk for b in sent)


def test_ring_all_reduce_bytes_match_the_formula_when_chunks_are_equal():
    K, numel = 4, 4 * 1000
    _, sent = nb.ring_all_reduce([torch.ones(numel) for _ in range(K)])
    assert sent == [2 * (K - 1) * numel // K * 4] * K  # 2 (K-1)/K M bytes each, M = 4 numel


def test_naive_all_reduce_sums_and_loads_the_root():
    tensors = [torch.full((10,), float(k)) for k in range(4)]
    sums, sent = nb.naive_all_reduce(tensors)
    assert all(torch.equal(s, torch.full((10,), 6.0)) for s in sums)
    assert sent == [3 * 40, 40, 40, 40]


@pytest.mark.parametrize("K", [1, 2, 4])
def test_average_of_shard_gradients_is_the_batch_gradient(K):
    torch.manual_seed(K)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    x, y = torch.randn(24, 6, dtype=torch.float64), torch.randint(0, 3, (24,))
    loss_fn = nn.CrossEntropyLoss()
    model.zero_grad()
    loss_fn(model(x), y).backward()
    whole = [p.grad.clone() for p in model.parameters()]
    shards = nb.shard_gradients(model, loss_fn, x, y, K)
    assert len(shards) == K
    for avg, w in zip((torch.stack(g).mean(0) for g in zip(*shards)), whole):
        torch.testing.assert_close(avg, w)


@pytest.mark.parametrize("sizes", [[8, 8], [5, 11, 3], [16]])
def test_sync_batch_norm_equals_batchnorm_on_the_whole_batch(sizes):
    g = torch.Generator().manual_seed(len(sizes))
    batch = torch.randn(sum(sizes), 4, 3, 3, generator=g, dtype=torch.float64) * 3 + 2
    reference = nn.BatchNorm2d(4, affine=False).double()(batch)
    out = nb.sync_batch_norm(list(batch.split(sizes)))
    assert [o.shape[0] for o in out] == sizes
    torch.testing.assert_close(torch.cat(out), reference)
