"""course_utils.attention (the packaged attention used by notebooks 05 and 06) against PyTorch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from references import close, positional_encoding_reference, rand, random_mask
from torch import nn

from course_utils.attention import (
    MultiHeadAttention,
    causal_mask,
    scaled_dot_product_attention,
    sinusoidal_positional_encoding,
)


def make_pair(C, H, bias=True, seed=0):
    torch.manual_seed(seed)
    reference = nn.MultiheadAttention(C, H, batch_first=True, bias=bias, dtype=torch.float64)
    ours = MultiHeadAttention(C, H, bias=bias).double().load_from_torch(reference)
    return ours, reference


# --- causal_mask ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 5])
def test_causal_mask(size):
    mask = causal_mask(size)
    assert mask.dtype == torch.bool and mask.shape == (size, size)
    for i in range(size):
        for j in range(size):
            assert mask[i, j].item() == (j <= i)


@pytest.mark.parametrize("bad", [0, -3])
def test_causal_mask_rejects_non_positive_size(bad):
    with pytest.raises(ValueError):
        causal_mask(bad)


# --- scaled_dot_product_attention -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "q_shape,k_shape,dv", [((4, 8), (4, 8), 8), ((2, 5, 4), (2, 7, 4), 3), ((2, 3, 6, 16), (2, 3, 2, 16), 5)]
)
def test_sdpa_matches_torch_without_mask(dtype, q_shape, k_shape, dv):
    q, k = rand(*q_shape, seed=1, dtype=dtype), rand(*k_shape, seed=2, dtype=dtype)
    v = rand(*k_shape[:-1], dv, seed=3, dtype=dtype)
    out, weights = scaled_dot_product_attention(q, k, v)
    close(out, F.scaled_dot_product_attention(q, k, v), dtype)
    assert weights.shape == (*q_shape[:-1], k_shape[-2])
    close(weights.sum(-1), torch.ones(q_shape[:-1], dtype=dtype), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mask_shape", [(5, 7), (3, 5, 7), (2, 1, 5, 7), (2, 3, 5, 7), (2, 1, 1, 7)])
def test_sdpa_matches_torch_with_mask(dtype, mask_shape):
    q, k, v = (
        rand(2, 3, 5, 4, seed=4, dtype=dtype),
        rand(2, 3, 7, 4, seed=5, dtype=dtype),
        rand(2, 3, 7, 6, seed=6, dtype=dtype),
    )
    mask = random_mask(mask_shape, seed=len(mask_shape))
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), dtype)
    assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()


@pytest.mark.parametrize("T", [1, 3, 8])
def test_sdpa_causal_matches_is_causal(T):
    q, k, v = rand(2, 2, T, 4, seed=7), rand(2, 2, T, 4, seed=8), rand(2, 2, T, 3, seed=9)
    out, weights = scaled_dot_product_attention(q, k, v, causal_mask(T))
    close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert (weights.triu(diagonal=1) == 0).all()


def test_sdpa_gradients_match_torch():
    q, k, v = (rand(2, 4, 3, seed=s).requires_grad_() for s in (10, 11, 12))
    mask = random_mask((2, 4, 4), seed=13)
    scaled_dot_product_attention(q, k, v, mask)[0].square().sum().backward()
    ours = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    F.scaled_dot_product_attention(q, k, v, attn_mask=mask).square().sum().backward()
    for mine, theirs in zip(ours, (q.grad, k.grad, v.grad)):
        close(mine, theirs)


def test_fully_masked_rows_give_zeros_not_nan():
    q, k, v = (rand(2, 4, 3, seed=s).requires_grad_() for s in (14, 15, 16))
    mask = random_mask((2, 4, 4), seed=17)
    mask[1, 3] = False  # this query may attend to nothing
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert not out.isnan().any() and not weights.isnan().any()
    assert (out[1, 3] == 0).all() and (weights[1, 3] == 0).all()
    rows = mask.any(-1)
    close(out[rows], F.scaled_dot_product_attention(q, k, v, attn_mask=mask)[rows])
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))

    empty = torch.zeros(4, 4, dtype=torch.bool)  # every row fully masked
    out, weights = scaled_dot_product_attention(q.detach(), k.detach(), v.detach(), empty)
    assert torch.equal(out, torch.zeros_like(out)) and torch.equal(weights, torch.zeros_like(weights))


def test_sdpa_keeps_nan_from_inputs_visible():
    """Zeroing fully masked rows must not hide NaNs that come from the data."""
    q, k, v = rand(3, 2, seed=18), rand(3, 2, seed=19), rand(3, 2, seed=20)
    q[0, 0] = float("nan")
    out, _ = scaled_dot_product_attention(q, k, v, torch.ones(3, 3, dtype=torch.bool))
    assert out[0].isnan().all() and not out[1:].isnan().any()


def test_sdpa_rejects_bad_inputs():
    q, k, v = rand(2, 4, 8, seed=21), rand(2, 5, 8, seed=22), rand(2, 5, 3, seed=23)
    with pytest.raises(ValueError, match="last dimension"):
        scaled_dot_product_attention(q, k[..., :4], v)
    with pytest.raises(ValueError, match="same length"):
        scaled_dot_product_attention(q, k, v[:, :3])
    with pytest.raises(ValueError, match=r"\(\.\.\., T, d\)"):
        scaled_dot_product_attention(q[0, 0], k, v)
    with pytest.raises(TypeError, match="boolean"):
        scaled_dot_product_attention(q, k, v, torch.ones(4, 5))
    with pytest.raises(TypeError, match="boolean"):
        scaled_dot_product_attention(q, k, v, torch.ones(4, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="does not broadcast"):
        scaled_dot_product_attention(q, k, v, torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="torch.Tensor"):
        scaled_dot_product_attention(q.tolist(), k, v)


# --- MultiHeadAttention ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("B,T,C,H", [(1, 1, 4, 1), (2, 5, 12, 3), (3, 4, 16, 8)])
def test_mha_self_attention_matches_torch(bias, B, T, C, H):
    ours, reference = make_pair(C, H, bias, seed=B + T)
    x = rand(B, T, C, seed=30)
    close(ours(x, x, x), reference(x, x, x)[0])
    causal = causal_mask(T)
    out = ours(x, x, x, mask=causal[None, None])
    theirs, theirs_w = reference(x, x, x, attn_mask=~causal, average_attn_weights=False)
    close(out, theirs)
    close(ours.last_weights, theirs_w)  # (B, H, T, T), kept for plotting


@pytest.mark.parametrize("B,Tq,Tk,C,H", [(2, 3, 7, 8, 2), (3, 6, 2, 12, 4)])
def test_mha_cross_attention_with_key_padding_matches_torch(B, Tq, Tk, C, H):
    ours, reference = make_pair(C, H, seed=Tq * Tk)
    xq, memory = rand(B, Tq, C, seed=31), rand(B, Tk, C, seed=32)
    lengths = torch.randint(1, Tk + 1, (B,), generator=torch.Generator().manual_seed(33))
    keep = torch.arange(Tk) < lengths[:, None]  # (B, Tk)
    out = ours(xq, memory, memory, mask=keep[:, None, None, :])
    close(out, reference(xq, memory, memory, key_padding_mask=~keep)[0])


def test_mha_per_sequence_mask_matches_torch():
    """A (B, 1, Tq, Tk) mask applies to every head of its own sequence (here B == H, the case that mis-broadcast)."""
    B, Tq, Tk, C, H = 2, 4, 5, 8, 2
    ours, reference = make_pair(C, H, seed=34)
    xq, memory = rand(B, Tq, C, seed=35), rand(B, Tk, C, seed=36)
    mask = random_mask((B, Tq, Tk), seed=37)
    out = ours(xq, memory, memory, mask=mask[:, None])
    theirs, _ = reference(xq, memory, memory, attn_mask=(~mask).repeat_interleave(H, dim=0))
    close(out, theirs)


@pytest.mark.parametrize("B", [3, 2])
def test_mha_refuses_masks_whose_meaning_would_depend_on_a_shape_coincidence(B):
    """Issue 10, fault 8: a (B, Tk) key-padding mask with B == Tq was silently read as a (Tq, Tk) mask."""
    ours, reference = make_pair(8, 2, seed=42)
    q = rand(B, 3, 8, seed=43)
    keep = torch.ones(B, 3, dtype=torch.bool)
    keep[0, 2] = keep[1, 1:] = False  # (B, Tk) key padding
    for mask in (keep, keep[:, None, :]):  # 2-D, and a 3-D (B, 1, Tk) that could also be read as (H, Tq, Tk)
        with pytest.raises(ValueError, match=r"mask must be 4-D.*mask\[:, None, None, :\]"):
            ours(q, q, q, mask)
    close(ours(q, q, q, keep[:, None, None, :]), reference(q, q, q, key_padding_mask=~keep)[0])
    with pytest.raises(ValueError, match=r"does not fit \(B or 1, H or 1, Tq or 1, Tk\)"):
        ours(q, q, q, keep[:, None, None, :2])  # 2 keys for 3
    with pytest.raises(ValueError, match="does not fit"):
        ours(q, q, q, torch.ones(B, 3, 3, 3, dtype=torch.bool))  # 3 heads for a 2-head module


def test_mha_gradients_flow():
    ours, _ = make_pair(8, 2, seed=38)
    x = rand(2, 3, 8, seed=39).requires_grad_()
    ours(x, x, x, mask=causal_mask(3)[None, None]).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in ours.parameters())


@pytest.mark.parametrize("embed_dim,num_heads", [(10, 3), (4, 8)])
def test_mha_rejects_indivisible_sizes(embed_dim, num_heads):
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(embed_dim, num_heads)


@pytest.mark.parametrize("embed_dim,num_heads,error", [(8, 0, ValueError), (0, 1, ValueError), (8.0, 2, TypeError)])
def test_mha_rejects_bad_sizes(embed_dim, num_heads, error):
    with pytest.raises(error):
        MultiHeadAttention(embed_dim, num_heads)


def test_mha_rejects_wrong_shapes():
    ours, _ = make_pair(8, 2, seed=40)
    x = rand(2, 3, 8, seed=41)
    with pytest.raises(ValueError, match="query"):
        ours(x[0], x[0], x[0])  # no batch dimension
    with pytest.raises(ValueError, match="query"):
        ours(x[..., :6], x, x)  # wrong embedding size
    with pytest.raises(ValueError, match="key"):
        ours(x, x[:1], x[:1])  # batch sizes differ
    with pytest.raises(ValueError, match="value"):
        ours(x, x, x[:, :2])  # values and keys of different lengths
    with pytest.raises(TypeError, match="boolean"):
        ours(x, x, x, mask=torch.ones(1, 1, 3, 3))


def test_load_from_torch_rejects_mismatches():
    with pytest.raises(ValueError, match="size mismatch"):
        MultiHeadAttention(8, 2).load_from_torch(nn.MultiheadAttention(8, 4, batch_first=True))
    with pytest.raises(ValueError, match="bias"):
        MultiHeadAttention(8, 2).load_from_torch(nn.MultiheadAttention(8, 2, batch_first=True, bias=False))
    with pytest.raises(ValueError, match="bias"):
        MultiHeadAttention(8, 2, bias=False).load_from_torch(nn.MultiheadAttention(8, 2, batch_first=True))
    with pytest.raises(ValueError, match="kdim"):
        MultiHeadAttention(8, 2).load_from_torch(nn.MultiheadAttention(8, 2, batch_first=True, kdim=4, vdim=4))
    with pytest.raises(ValueError, match="add_bias_kv"):
        MultiHeadAttention(8, 2).load_from_torch(nn.MultiheadAttention(8, 2, batch_first=True, add_bias_kv=True))


# --- sinusoidal_positional_encoding -----------------------------------------------------------------------------


@pytest.mark.parametrize("length,dim", [(1, 2), (10, 6), (60, 32)])
def test_positional_encoding_against_formula(length, dim):
    pe = sinusoidal_positional_encoding(length, dim)
    assert pe.shape == (length, dim)
    torch.testing.assert_close(pe.double(), positional_encoding_reference(length, dim), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "length,dim,error", [(0, 4, ValueError), (4, 3, ValueError), (4, 0, ValueError), (4.0, 4, TypeError)]
)
def test_positional_encoding_rejects_bad_sizes(length, dim, error):
    with pytest.raises(error):
        sinusoidal_positional_encoding(length, dim)
