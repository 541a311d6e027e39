"""Notebook 06b's from-scratch code (its ``# export`` cells) against PyTorch and independent references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from nbcode import load_exports
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_utils.kv_cache import KVCache
from course_utils.number_words import number_to_words

nb = load_exports("06b_decoder_only_kv_cache_sampling")


# --- the task as text ----------------------------------------------------------------------------------------


def test_lines_round_trip_and_grammar():
    for n in range(1000):
        ids = nb.encode_line(n)
        assert nb.read_line(ids) == n
        assert nb.show_line(ids) == " ".join(["<bos>", *f"{n:03d}", "="] + number_to_words(n) + ["<eos>"])
        assert nb.read_line(ids + [nb.INDEX["seven"]]) == n  # tokens after <eos> are ignored
    lines = nb.lines_tensor([0, 777])
    assert lines.shape == (2, nb.LINE_LEN) and lines[0, 7:].eq(nb.PAD).all() and nb.EOS in lines[1].tolist()


@pytest.mark.parametrize(
    "tokens",
    [
        ["<bos>", "3", "4", "2", "=", "three", "hundred", "forty", "three", "<eos>"],  # wrong number
        ["<bos>", "3", "4", "2", "=", "three", "hundred", "forty", "two"],  # no <eos>
        ["<bos>", "3", "4", "=", "thirty", "four", "<eos>"],  # two digits
        ["3", "4", "2", "=", "three", "hundred", "forty", "two", "<eos>"],  # no <bos>
        ["<bos>", "3", "4", "2", "three", "hundred", "forty", "two", "<eos>"],  # no "="
        ["<bos>", "<eos>"],
    ],
)
def test_read_line_rejects_wrong_lines(tokens):
    assert nb.read_line([nb.INDEX[t] for t in tokens]) is None


# --- the block against PyTorch -------------------------------------------------------------------------------


def causal_float_mask(t):
    return nn.Transformer.generate_square_subsequent_mask(t, dtype=torch.float64)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("d_model, heads, d_ff, T", [(16, 2, 32, 5), (24, 4, 40, 9)])
def test_block_equals_encoder_layer_with_causal_mask(norm_first, d_model, heads, d_ff, T):
    torch.manual_seed(T)
    layer = nn.TransformerEncoderLayer(
        d_model,
        heads,
        d_ff,
        dropout=0.0,
        activation="gelu",
        batch_first=True,
        norm_first=norm_first,
        dtype=torch.float64,
    )
    with torch.no_grad():  # random norms, so a LayerNorm is not close to a no-op
        for norm in (layer.norm1, layer.norm2):
            norm.weight.uniform_(0.5, 1.5), norm.bias.uniform_(-0.5, 0.5)
    block = nb.load_torch_layer(nb.DecoderOnlyBlock(d_model, heads, d_ff).double(), layer)
    assert block.norm_first == norm_first
    x = torch.randn(2, T, d_model, dtype=torch.float64, requires_grad=True)
    ours = block(x)
    theirs = layer(x, src_mask=causal_float_mask(T), is_causal=True)
    torch.testing.assert_close(ours, theirs)
    (grad_ours,) = torch.autograd.grad(ours.square().sum(), x)
    (grad_theirs,) = torch.autograd.grad(theirs.square().sum(), x)
    torch.testing.assert_close(grad_ours, grad_theirs)


@pytest.mark.parametrize("norm_first", [False, True])
def test_block_equals_decoder_layer_without_cross_attention(norm_first):
    torch.manual_seed(3)
    layer = nn.TransformerDecoderLayer(
        16, 4, 24, dropout=0.0, activation="gelu", batch_first=True, norm_first=norm_first, dtype=torch.float64
    )
    with torch.no_grad():
        for norm in (layer.norm1, layer.norm3):
            norm.weight.uniform_(0.5, 1.5), norm.bias.uniform_(-0.5, 0.5)
    block = nb.load_torch_layer(nb.DecoderOnlyBlock(16, 4, 24).double(), layer)
    with torch.no_grad():
        layer.multihead_attn.out_proj.weight.zero_(), layer.multihead_attn.out_proj.bias.zero_()
    layer.norm2 = nn.Identity()
    x = torch.randn(3, 6, 16, dtype=torch.float64)
    for s in (1, 5):
        memory = torch.randn(3, s, 16, dtype=torch.float64)
        torch.testing.assert_close(block(x), layer(x, memory, tgt_mask=causal_float_mask(6), tgt_is_causal=True))


@pytest.mark.parametrize("norm_first", [False, True])
def test_block_is_notebook_06s_decoder_block_minus_cross_attention(norm_first):
    """06's own DecoderBlock (ReLU) with sub-layer 2 removed computes what DecoderOnlyBlock computes."""
    decoder_block = load_exports("06_transformer_decoder_beam_search").DecoderBlock
    torch.manual_seed(5)
    theirs = decoder_block(16, 4, 24, norm_first=norm_first).double().eval()
    ours = nb.DecoderOnlyBlock(16, 4, 24, norm_first=norm_first, activation=nn.ReLU).double()
    with torch.no_grad():
        for norm in (theirs.norm1, theirs.norm3):
            norm.weight.uniform_(0.5, 1.5), norm.bias.uniform_(-0.5, 0.5)
    names = ("q_proj", "k_proj", "v_proj", "out_proj")
    pairs = [(getattr(ours.self_attn, n), getattr(theirs.self_attn, n)) for n in names]
    pairs += [(ours.feed_forward, theirs.ff), (ours.norm1, theirs.norm1), (ours.norm2, theirs.norm3)]
    for mine, source in pairs:
        mine.load_state_dict(source.state_dict())
    x = torch.randn(3, 6, 16, dtype=torch.float64)
    memory = torch.randn(3, 4, 16, dtype=torch.float64)
    with torch.no_grad():
        assert (ours(x) - theirs(x, memory)).abs().max() > 1e-3  # with its cross-attention, 06's block differs
        theirs.cross_attn.out_proj.weight.zero_(), theirs.cross_attn.out_proj.bias.zero_()  # remove sub-layer 2 ...
        theirs.norm2 = nn.Identity()  # ... and its LayerNorm
        for other_memory in (memory, torch.randn(3, 1, 16, dtype=torch.float64)):
            torch.testing.assert_close(ours(x), theirs(x, other_memory))


@pytest.mark.parametrize("past, T", [(0, 1), (0, 6), (3, 1), (4, 3)])
def test_causal_attention_with_past_matches_sdpa(past, T):
    g = torch.Generator().manual_seed(past * 10 + T)
    q = torch.randn(2, 3, T, 4, generator=g, dtype=torch.float64)
    k, v = (torch.randn(2, 3, past + T, 4, generator=g, dtype=torch.float64) for _ in range(2))
    keep = torch.ones(past + T, past + T, dtype=torch.bool).tril()[past:]  # rows of the new positions
    torch.testing.assert_close(nb.causal_attention(q, k, v), F.scaled_dot_product_attention(q, k, v, attn_mask=keep))


def test_attention_refuses_indivisible_heads():
    with pytest.raises(ValueError, match="divisible"):
        nb.CausalSelfAttention(10, 3)


# --- the model, its cache and its training step ----------------------------------------------------------------


def tiny(seed=0, **sizes):
    torch.manual_seed(seed)
    return nb.TinyGPT(len(nb.VOCAB), **sizes).double().eval()


def test_output_t_ignores_later_tokens():
    model = tiny(max_len=12)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(len(nb.VOCAB), (2, 12), generator=g)
    full = model(x)
    for t in range(11):
        y = x.clone()
        y[:, t + 1 :] = torch.randint(len(nb.VOCAB), (2, 11 - t), generator=g)
        torch.testing.assert_close(model(y)[:, : t + 1], full[:, : t + 1])


@pytest.mark.parametrize("cache_kind", ["concat", "kvcache"])
@pytest.mark.parametrize("prompt_len", [1, 4])
def test_cached_generation_equals_recomputation(cache_kind, prompt_len):
    model = tiny(seed=1, d_model=32, num_heads=4, num_layers=3, d_ff=48, max_len=20)
    prompt = torch.randint(len(nb.VOCAB), (3, prompt_len), generator=torch.Generator().manual_seed(2))
    greedy = lambda logits: logits.argmax(-1)  # noqa: E731
    full_tokens, full_logits = nb.generate(model, prompt, 20 - prompt_len, greedy)
    cache = nb.ConcatKVCache(3) if cache_kind == "concat" else nb.kv_cache_for(model, 3, 20)
    tokens, logits = nb.generate(model, prompt, 20 - prompt_len, greedy, cache)
    assert torch.equal(tokens, full_tokens) and logits.shape == (3, 20 - prompt_len, len(nb.VOCAB))
    torch.testing.assert_close(logits, full_logits)
    assert cache.length == 19  # every position but the last generated one went through the model


def test_kv_cache_for_matches_the_model_and_model_refuses_positions_beyond_max_len():
    model = tiny(d_model=32, num_heads=2, num_layers=3, max_len=8)
    cache = nb.kv_cache_for(model, 5, 8)
    assert isinstance(cache, KVCache) and cache.keys.shape == (3, 5, 2, 8, 16) and cache.keys.dtype == torch.float64
    with pytest.raises(ValueError, match="max_len=8"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_lm_step_is_next_token_cross_entropy_over_real_tokens():
    model = tiny(seed=4)
    lines = nb.lines_tensor([5, 42, 999])
    out = nb.lm_step(model, [lines])
    logits = model(lines[:, :-1])
    losses = [
        -torch.log_softmax(logits[b, t], -1)[lines[b, t + 1]]
        for b in range(3)
        for t in range(nb.LINE_LEN - 1)
        if lines[b, t + 1] != nb.PAD
    ]
    torch.testing.assert_close(out.loss, torch.stack(losses).mean())
    assert out.size == len(losses) == int((lines[:, 1:] != nb.PAD).sum())


@pytest.mark.parametrize("t", [1, 3, 16])
def test_step_flops_is_what_flop_counter_counts(t):
    model = tiny(d_model=32, num_heads=4, num_layers=2, d_ff=48, max_len=16).float()
    sizes = dict(d_model=32, d_ff=48, num_layers=2, vocab_size=len(nb.VOCAB))
    seq = torch.randint(len(nb.VOCAB), (1, t))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(seq)
    assert counter.get_total_flops() == nb.step_flops(t, cached=False, **sizes)
    cache = nb.ConcatKVCache(2)
    with torch.no_grad():
        if t > 1:
            model(seq[:, :-1], cache)
        with FlopCounterMode(display=False) as counter:
            model(seq[:, -1:], cache)
    assert counter.get_total_flops() == nb.step_flops(t, cached=True, **sizes)


# --- sampling --------------------------------------------------------------------------------------------------


def ranked(row):
    return sorted(range(len(row)), key=lambda i: (-row[i], i))


@pytest.mark.parametrize("k", [1, 2, 5, 7])
def test_top_k_matches_torch_topk_and_breaks_ties_by_id(k):
    g = torch.Generator().manual_seed(k)
    distinct = torch.randn(50, 7, generator=g)  # no ties: torch.topk is a reference
    kept = nb.top_k_filter(distinct, k) > -math.inf
    expected = torch.zeros_like(kept).scatter(-1, torch.topk(distinct, k).indices, True)
    assert torch.equal(kept, expected)
    tied = torch.round(torch.randn(200, 7, generator=g))  # many ties: the lower id first
    kept = nb.top_k_filter(tied, k) > -math.inf
    for row, mask in zip(tied.tolist(), kept):
        assert set(mask.nonzero().flatten().tolist()) == set(ranked(row)[:k])


def nucleus_by_loop(row, p):
    kept, mass = set(), 0.0
    for i in ranked(row):
        if mass >= p:
            break
        kept.add(i)
        mass += row[i]
    return kept


@pytest.mark.parametrize("p", [0.05, 0.5, 0.9, 0.999, 1.0])
def test_top_p_matches_a_loop_and_keeps_the_intended_mass(p):
    g = torch.Generator().manual_seed(int(p * 1000))
    logits = torch.cat([torch.randn(100, 9, generator=g) * 2, torch.round(torch.randn(100, 9, generator=g))])
    probs = torch.softmax(logits, -1)
    kept = nb.top_p_filter(logits, p) > -math.inf
    for row, mask in zip(probs.tolist(), kept):
        assert set(mask.nonzero().flatten().tolist()) == nucleus_by_loop(row, p)
    mass = (probs * kept).sum(-1)
    assert (mass >= p - 1e-6).all()
    assert (mass - probs.masked_fill(~kept, math.inf).amin(-1) < p).all()  # no smaller set reaches p


def test_top_p_one_keeps_every_possible_token_and_composes_with_top_k():
    logits = torch.tensor([[1.0, 0.0, -math.inf, 2.0]])
    assert (nb.top_p_filter(logits, 1.0) > -math.inf).tolist() == [[True, True, False, True]]
    probs = nb.sampling_distribution(torch.tensor([3.0, 2.0, 1.0, 0.0]), top_k=3, top_p=0.7)
    head = torch.softmax(torch.tensor([3.0, 2.0, 1.0]), -1)  # top-k first, then top-p of what is left
    expected = head[:2] / head[:2].sum() if head[0] < 0.7 else torch.tensor([1.0, 0.0])
    torch.testing.assert_close(probs[:2], expected)
    assert probs[2:].eq(0).all()


def test_sampling_distribution_temperature_and_bad_arguments():
    z = torch.tensor([1.0, 2.0, 0.5])
    for tau in (0.3, 1.0, 4.0):
        torch.testing.assert_close(nb.sampling_distribution(z, tau), F.softmax(z / tau, -1))
    with pytest.raises(ValueError, match="greedy"):
        nb.sampling_distribution(z, 0.0)
    with pytest.raises(ValueError, match="top_k"):
        nb.sampling_distribution(z, top_k=4)
    with pytest.raises(ValueError, match="top_p"):
        nb.sampling_distribution(z, top_p=0.0)


def test_sampler_frequencies_match_categorical_and_skip_dropped_tokens():
    probs = nb.sampling_distribution(torch.tensor([2.0, 1.0, 1.0, 0.0, -1.0, 0.5]), top_p=0.9)
    draws = nb.sample(probs.expand(60_000, -1), torch.Generator().manual_seed(0))
    assert draws.shape == (60_000,) and (probs[draws] > 0).all()
    counts = torch.bincount(draws, minlength=6).double()
    used = probs > 0
    expected = probs.double() * 60_000
    stat = ((counts[used] - expected[used]) ** 2 / expected[used]).sum()
    p_value = torch.special.gammaincc(torch.tensor((int(used.sum()) - 1) / 2, dtype=torch.float64), stat / 2)
    assert p_value > 1e-3
    reference = torch.distributions.Categorical(probs=probs).sample((60_000,))
    torch.testing.assert_close(
        counts / 60_000, torch.bincount(reference, minlength=6).double() / 60_000, atol=0.01, rtol=0
    )


def test_sampler_batches_and_never_picks_zero_probability_tokens():
    probs = torch.zeros(4, 3, 5)
    probs[..., 2] = 1.0  # only token 2 is possible
    assert nb.sample(probs).eq(2).all() and nb.sample(probs).shape == (4, 3)
    edge = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    for _ in range(50):
        drawn = nb.sample(edge)
        assert drawn[0] == 1 and drawn[1] in (0, 1)
