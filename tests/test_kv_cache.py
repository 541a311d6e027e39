"""course_utils.kv_cache: the preallocated key/value cache and its size formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_utils.kv_cache import KVCache, kv_cache_bytes


def test_append_returns_everything_stored_so_far():
    cache = KVCache(2, batch_size=3, num_heads=2, head_dim=4, max_len=10)
    g = torch.Generator().manual_seed(0)
    chunks = [torch.randn(3, 2, t, 4, generator=g) for t in (4, 1, 1, 3)]  # a prefill, two steps, three more
    for i, chunk in enumerate(chunks):
        assert cache.length == sum(c.shape[2] for c in chunks[:i])
        k0, v0 = cache.append(0, chunk, 2 * chunk)
        assert cache.length == sum(c.shape[2] for c in chunks[:i])  # layer 1 has not appended yet
        k1, v1 = cache.append(1, -chunk, chunk)
        expected = torch.cat(chunks[: i + 1], dim=2)
        torch.testing.assert_close(k0, expected, rtol=0, atol=0)
        torch.testing.assert_close(v0, 2 * expected, rtol=0, atol=0)
        torch.testing.assert_close(k1, -expected, rtol=0, atol=0)
        torch.testing.assert_close(v1, expected, rtol=0, atol=0)
    assert cache.length == 9 and cache.lengths == [9, 9]


def test_views_share_the_buffers_no_copy():
    cache = KVCache(1, 1, 1, 2, max_len=4)
    k, _ = cache.append(0, torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2))
    assert k.data_ptr() == cache.keys.data_ptr()


def test_cached_attention_equals_full_causal_attention():
    """The reason for a cache: attending step by step over the stored keys equals causal attention at once."""
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 3, 7, 5, generator=g, dtype=torch.float64) for _ in range(3))  # (B, H, T, hd)
    cache = KVCache(1, 2, 3, 5, max_len=7, dtype=torch.float64)
    steps = []
    for t in range(7):
        keys, values = cache.append(0, k[:, :, t : t + 1], v[:, :, t : t + 1])
        steps.append(F.scaled_dot_product_attention(q[:, :, t : t + 1], keys, values))  # the newest query sees all
    torch.testing.assert_close(torch.cat(steps, dim=2), F.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_reset_and_sizes():
    cache = KVCache(4, 2, 4, 8, max_len=16, dtype=torch.float16)
    assert cache.nbytes == kv_cache_bytes(4, 16, 32, batch_size=2, dtype=torch.float16) == 2 * 4 * 2 * 16 * 32 * 2
    cache.append(0, torch.zeros(2, 4, 3, 8, dtype=torch.float16), torch.zeros(2, 4, 3, 8, dtype=torch.float16))
    cache.reset()
    assert cache.lengths == [0] * 4 and "length=0" in repr(cache)


def test_size_formula_examples():
    assert kv_cache_bytes(12, 1024, 768) == 75_497_472  # GPT-2 small, float32, one sequence
    assert kv_cache_bytes(32, 4096, 4096, dtype=torch.float16) == 2**31  # the docstring's 2 GiB
    with pytest.raises(ValueError, match="length"):
        kv_cache_bytes(1, 0, 8)


def test_meta_device_sizes_without_memory():
    assert KVCache(12, 1, 12, 64, 1024, device="meta").nbytes == kv_cache_bytes(12, 1024, 768)


@pytest.mark.parametrize(
    "k_shape, v_shape, match",
    [
        ((1, 2, 1, 4), (1, 2, 1, 3), "must both be"),
        ((2, 2, 1, 4), (2, 2, 1, 4), "must both be"),
        ((1, 2, 4), (1, 2, 4), "must both be"),
    ],
)
def test_wrong_shapes_are_refused(k_shape, v_shape, match):
    cache = KVCache(1, 1, 2, 4, max_len=5)
    with pytest.raises(ValueError, match=match):
        cache.append(0, torch.zeros(k_shape), torch.zeros(v_shape))
    assert cache.lengths == [0]


def test_overflow_and_bad_layer_are_refused_with_advice():
    cache = KVCache(2, 1, 1, 2, max_len=3)
    cache.append(0, torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match="larger max_len"):
        cache.append(0, torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))
    assert cache.lengths == [2, 0]  # nothing written by the refused call
    with pytest.raises(IndexError, match="0..1"):
        cache.append(2, torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, 1, 2))
    with pytest.raises(TypeError):
        cache.append(0, [[0.0]], torch.zeros(1, 1, 1, 2))
    with pytest.raises(ValueError, match="positive"):
        KVCache(0, 1, 1, 2, 3)
