"""Notebook 05's from-scratch attention code (its ``# export`` cells) against PyTorch, on new inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from nbcode import load_exports
from references import close, positional_encoding_reference, rand, random_mask
from torch import nn

nb = load_exports("05_self_attention")
DTYPES = [torch.float32, torch.float64]


# --- single-head attention -------------------------------------------------------------------------------


@pytest.mark.parametrize("T,d_in,d_k,d_v", [(1, 3, 2, 2), (5, 4, 4, 3), (9, 6, 8, 5)])
def test_loops_and_matrices_match_torch(T, d_in, d_k, d_v):
    x = rand(T, d_in, seed=T)
    Wq, Wk, Wv = rand(d_in, d_k, seed=1), rand(d_in, d_k, seed=2), rand(d_in, d_v, seed=3)
    b_loop, A_loop = nb.attention_loops(x, Wq, Wk, Wv)
    b_mat, A_mat = nb.self_attention(x, Wq, Wk, Wv)
    reference = F.scaled_dot_product_attention(x @ Wq, x @ Wk, x @ Wv)
    close(b_loop, reference)
    close(b_mat, reference)
    close(A_loop, A_mat)
    assert b_loop.shape == (T, d_v) and A_loop.shape == (T, T)
    close(A_loop.sum(-1), torch.ones(T, dtype=torch.float64))


def test_loops_survive_large_scores():
    """The loop version subtracts the max before exp, so huge scores do not overflow to inf/NaN."""
    x = rand(4, 3, seed=5) * 1e3
    W = torch.eye(3, dtype=torch.float64)
    b, A = nb.attention_loops(x, W, W, W)
    assert torch.isfinite(b).all() and torch.isfinite(A).all()
    close(b, F.scaled_dot_product_attention(x, x, x))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape_q,shape_k,dv", [((7, 4), (7, 4), 4), ((2, 5, 8), (2, 3, 8), 6), ((2, 3, 4, 16), (2, 3, 9, 16), 5)]
)
def test_attention_matches_sdpa(dtype, shape_q, shape_k, dv):
    q, k = rand(*shape_q, seed=10, dtype=dtype), rand(*shape_k, seed=11, dtype=dtype)
    v = rand(*shape_k[:-1], dv, seed=12, dtype=dtype)
    out, weights = nb.attention(q, k, v)
    close(out, F.scaled_dot_product_attention(q, k, v), dtype)
    assert weights.shape == (*shape_q[:-1], shape_k[-2])
    close(weights.sum(-1), torch.ones(shape_q[:-1], dtype=dtype), dtype)


def test_attention_gradients_match_sdpa():
    q, k, v = (rand(2, 5, 4, seed=s).requires_grad_() for s in (20, 21, 22))
    nb.attention(q, k, v)[0].square().sum().backward()
    ours = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    F.scaled_dot_product_attention(q, k, v).square().sum().backward()
    for mine, theirs in zip(ours, (q.grad, k.grad, v.grad)):
        close(mine, theirs)


# --- additive scores -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("lead,Tq,Tk,dq,dk,h", [((), 3, 4, 2, 5, 7), ((2,), 1, 6, 4, 4, 3), ((2, 3), 5, 2, 3, 3, 4)])
def test_additive_scores_match_the_formula(lead, Tq, Tk, dq, dk, h):
    q, k = rand(*lead, Tq, dq, seed=30), rand(*lead, Tk, dk, seed=31)
    W, w = rand(h, dq + dk, seed=32), rand(h, seed=33)
    scores = nb.additive_scores(q, k, W, w)
    assert scores.shape == (*lead, Tq, Tk)
    flat_q, flat_k, flat_s = q.reshape(-1, Tq, dq), k.reshape(-1, Tk, dk), scores.reshape(-1, Tq, Tk)
    for b in range(flat_q.shape[0]):
        for i in range(Tq):
            for j in range(Tk):
                expected = torch.dot(w, torch.tanh(W @ torch.cat([flat_q[b, i], flat_k[b, j]])))
                close(flat_s[b, i, j], expected)


# --- masks ------------------------------------------------------------------------------------------------


def test_padding_mask():
    mask = nb.padding_mask([3, 1, 4], 4)
    expected = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(mask, expected)
    assert nb.padding_mask(torch.tensor([0, 2]), 2).tolist() == [[False, False], [True, True]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask_shape", [(6, 6), (2, 6, 6), (1, 6), (3, 2, 6, 6), (3, 1, 1, 6)])
def test_masked_attention_matches_sdpa(dtype, mask_shape):
    q, k, v = (rand(3, 2, 6, 4, seed=s, dtype=dtype) for s in (40, 41, 42))
    mask = random_mask(mask_shape, seed=len(mask_shape))
    out, weights = nb.masked_attention(q, k, v, mask)
    close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), dtype)
    assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()


@pytest.mark.parametrize("T", [1, 4, 7])
def test_causal_mask_matches_is_causal(T):
    q, k, v = (rand(2, T, 5, seed=s) for s in (50, 51, 52))
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    out, weights = nb.masked_attention(q, k, v, causal)
    close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert (weights.triu(diagonal=1) == 0).all()


def test_no_mask_is_plain_attention():
    q, k, v = (rand(4, 3, seed=s) for s in (53, 54, 55))
    close(nb.masked_attention(q, k, v)[0], nb.attention(q, k, v)[0])


def test_padded_batch_equals_unpadded_sequences():
    lengths = [5, 2, 4]
    B, T, d = len(lengths), max(lengths), 6
    keep = nb.padding_mask(lengths, T)
    q, k, v = (rand(B, T, d, seed=s) for s in (60, 61, 62))
    out, _ = nb.masked_attention(q, k, v, keep.unsqueeze(1))
    for b, L in enumerate(lengths):
        close(out[b, :L], F.scaled_dot_product_attention(q[b, :L], k[b, :L], v[b, :L]))


def test_fully_masked_rows_give_zeros_and_finite_gradients():
    q, k, v = (rand(2, 4, 3, seed=s).requires_grad_() for s in (70, 71, 72))
    mask = random_mask((2, 4, 4), seed=73)
    mask[0, 2] = False  # query 2 of sequence 0 may look at nothing
    out, weights = nb.masked_attention(q, k, v, mask)
    assert not out.isnan().any() and not weights.isnan().any()
    assert (out[0, 2] == 0).all() and (weights[0, 2] == 0).all()
    rows = mask.any(-1)  # compare with torch only where a row has an allowed key
    close(out[rows], F.scaled_dot_product_attention(q, k, v, attn_mask=mask)[rows])
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


# --- multi-head attention -----------------------------------------------------------------------------------


def torch_mha(C, H, bias, seed):
    torch.manual_seed(seed)
    return nn.MultiheadAttention(C, H, batch_first=True, bias=bias, dtype=torch.float64)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("B,Tq,Tk,C,H", [(1, 4, 4, 8, 1), (2, 5, 3, 12, 4), (3, 2, 6, 6, 3)])
def test_multi_head_from_scratch_matches_torch(bias, B, Tq, Tk, C, H):
    reference = torch_mha(C, H, bias, seed=C + H)
    mine = nb.load_torch_weights(nb.MultiHeadAttentionFromScratch(C, H, bias=bias).double(), reference)
    xq, xkv = rand(B, Tq, C, seed=80), rand(B, Tk, C, seed=81)
    keep = nb.padding_mask(torch.randint(1, Tk + 1, (B,), generator=torch.Generator().manual_seed(82)), Tk)

    ours, ours_w = mine(xq, xkv, xkv, mask=keep[:, None, None, :])  # cross-attention, key padding
    theirs, theirs_w = reference(xq, xkv, xkv, key_padding_mask=~keep, average_attn_weights=False)
    close(ours, theirs)
    close(ours_w, theirs_w)

    causal = torch.ones(Tq, Tq, dtype=torch.bool).tril()  # self-attention, causal
    ours, ours_w = mine(xq, xq, xq, mask=causal)
    theirs, theirs_w = reference(xq, xq, xq, attn_mask=~causal, average_attn_weights=False)
    close(ours, theirs)
    close(ours_w, theirs_w)

    per_seq = random_mask((B, Tq, Tk), seed=83)  # a different (Tq, Tk) mask for each sequence
    ours, _ = mine(xq, xkv, xkv, mask=per_seq[:, None])
    theirs, _ = reference(xq, xkv, xkv, attn_mask=(~per_seq).repeat_interleave(H, dim=0))
    close(ours, theirs)


@pytest.mark.parametrize("B,Tq,Tk,C,H", [(2, 3, 5, 8, 2), (1, 6, 6, 9, 3)])
def test_multi_head_loop_matches_torch(B, Tq, Tk, C, H):
    reference = torch_mha(C, H, bias=False, seed=B + C)
    Wq, Wk, Wv = (w.T for w in reference.in_proj_weight.detach().chunk(3))
    Wo = reference.out_proj.weight.detach().T
    xq, xkv = rand(B, Tq, C, seed=90), rand(B, Tk, C, seed=91)
    mask = random_mask((B, Tq, Tk), seed=92)
    out, weights = nb.multi_head_attention_loop(xq, xkv, Wq, Wk, Wv, Wo, H, mask=mask)
    theirs, theirs_w = reference(
        xq, xkv, xkv, attn_mask=(~mask).repeat_interleave(H, dim=0), average_attn_weights=False
    )
    close(out, theirs)
    close(weights, theirs_w)


def test_multi_head_rejects_bad_sizes():
    with pytest.raises(ValueError, match="divisible"):
        nb.MultiHeadAttentionFromScratch(10, 3)
    with pytest.raises(ValueError, match="divisible"):
        nb.multi_head_attention_loop(rand(1, 2, 10, seed=0), rand(1, 2, 10, seed=1), *(torch.eye(10),) * 4, 3)


def test_load_torch_weights_refuses_a_bias_mismatch():
    with pytest.raises(ValueError, match="bias"):
        nb.load_torch_weights(nb.MultiHeadAttentionFromScratch(8, 2, bias=True), torch_mha(8, 2, bias=False, seed=0))


@pytest.mark.parametrize("B,T,C,H", [(1, 1, 4, 1), (2, 5, 12, 3), (3, 4, 8, 8)])
def test_split_and_merge_heads(B, T, C, H):
    x = rand(B, T, C, seed=B * T)
    heads = nb.split_heads(x, H)
    assert heads.shape == (B, H, T, C // H)
    for h in range(H):  # head h is the h-th slice of the features, as in the loop version
        close(heads[:, h], x[..., h * (C // H) : (h + 1) * (C // H)])
    close(nb.merge_heads(heads), x)


# --- positional encoding -------------------------------------------------------------------------------------


@pytest.mark.parametrize("length,dim", [(1, 2), (7, 4), (50, 16)])
def test_positional_encoding_formula(length, dim):
    pe = nb.positional_encoding(length, dim, dtype=torch.float64)
    assert pe.shape == (length, dim)
    torch.testing.assert_close(pe, positional_encoding_reference(length, dim), atol=1e-12, rtol=0)


def test_positional_encoding_breaks_permutation_equivariance():
    x = rand(6, 8, seed=100)
    Wq, Wk, Wv = (rand(8, 8, seed=s) for s in (101, 102, 103))
    perm = torch.tensor([2, 0, 5, 1, 4, 3])
    out, _ = nb.self_attention(x, Wq, Wk, Wv)
    close(nb.self_attention(x[perm], Wq, Wk, Wv)[0], out[perm])  # no position information: equivariant
    pe = nb.positional_encoding(6, 8, dtype=torch.float64)
    out_pe, _ = nb.self_attention(x + pe, Wq, Wk, Wv)
    assert not torch.allclose(nb.self_attention(x[perm] + pe, Wq, Wk, Wv)[0], out_pe[perm])


def test_positional_encoding_rejects_odd_dim():
    with pytest.raises(ValueError, match="even"):
        nb.positional_encoding(4, 5)


# --- the encoder block --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,eps", [((5,), 1e-5), ((2, 3, 8), 1e-5), ((4, 7), 1e-2)])
def test_layer_norm_matches_torch(dtype, shape, eps):
    x = 5 + 3 * rand(*shape, seed=110, dtype=dtype)
    theirs = nn.LayerNorm(shape[-1], eps=eps, dtype=dtype)
    with torch.no_grad():
        theirs.weight.copy_(rand(shape[-1], seed=111, dtype=dtype))
        theirs.bias.copy_(rand(shape[-1], seed=112, dtype=dtype))
    ours = nb.LayerNormFromScratch(shape[-1], eps=eps).to(dtype)
    ours.load_state_dict(theirs.state_dict())
    close(ours(x), theirs(x), dtype)
    close(ours(x), F.layer_norm(x, shape[-1:], theirs.weight, theirs.bias, eps), dtype)


def test_layer_norm_gradients_match_torch():
    x = rand(3, 6, seed=113).requires_grad_()
    nb.LayerNormFromScratch(6).double()(x).pow(3).sum().backward()
    ours = x.grad.clone()
    x.grad = None
    F.layer_norm(x, (6,)).pow(3).sum().backward()
    close(ours, x.grad)


def torch_encoder_layer(C, H, d_ff, norm_first, seed):
    torch.manual_seed(seed)
    return nn.TransformerEncoderLayer(
        C, H, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first, dtype=torch.float64
    )


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("B,T,C,H,d_ff", [(1, 1, 4, 1, 8), (2, 5, 12, 3, 24), (3, 7, 8, 2, 5)])
def test_encoder_block_matches_torch(norm_first, B, T, C, H, d_ff):
    layer = torch_encoder_layer(C, H, d_ff, norm_first, seed=120 + C)
    block = nb.load_torch_encoder_weights(nb.EncoderBlock(C, H, d_ff, norm_first).double(), layer)
    x = rand(B, T, C, seed=121)
    close(block(x), layer(x))  # no mask
    lengths = torch.randint(1, T + 1, (B,), generator=torch.Generator().manual_seed(122))
    keep = nb.padding_mask(lengths, T)
    close(block(x, keep[:, None, None, :]), layer(x, src_key_padding_mask=~keep))  # key padding
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    close(block(x, causal), layer(x, src_mask=~causal))  # a (T, T) mask shared by the batch


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_gradients_match_torch(norm_first):
    layer = torch_encoder_layer(8, 2, 16, norm_first, seed=130)
    block = nb.load_torch_encoder_weights(nb.EncoderBlock(8, 2, 16, norm_first).double(), layer)
    x = rand(2, 4, 8, seed=131)
    block(x).square().sum().backward()
    layer(x).square().sum().backward()
    theirs = dict(layer.named_parameters())
    close(block.feed_forward[0].weight.grad, theirs["linear1.weight"].grad)
    close(block.norm1.weight.grad, theirs["norm1.weight"].grad)
    stacked = torch.cat(
        [p.weight.grad for p in (block.self_attn.q_proj, block.self_attn.k_proj, block.self_attn.v_proj)]
    )
    close(stacked, theirs["self_attn.in_proj_weight"].grad)


def test_post_norm_block_outputs_are_normalised():
    block = nb.EncoderBlock(16, 4, 32).double()  # γ = 1 and β = 0 at initialisation
    out = block(rand(2, 5, 16, seed=140) * 10)
    close(out.mean(-1), torch.zeros(2, 5, dtype=torch.float64))
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(2, 5, dtype=torch.float64), atol=1e-4, rtol=0)


def test_encoder_weights_refuse_another_norm_order():
    with pytest.raises(ValueError, match="norm_first"):
        nb.load_torch_encoder_weights(
            nb.EncoderBlock(8, 2, 16, norm_first=True), torch_encoder_layer(8, 2, 16, False, 0)
        )
