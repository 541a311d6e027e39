"""Exercise references for notebook 05 (self-attention)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..exercises import exercise


@exercise(
    "05.1",
    title="Causal attention by slicing",
    kind="transcription",
    hints=(
        "Row i may look at positions 0..i only: slice the keys and values of that prefix and apply "
        "section 3's softmax(q·kᵀ/√d)·v to it.",
        "The scale is √d with d = k.shape[-1]; collect the rows in a list and torch.stack them.",
    ),
)
def causal_rows(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(T, d) queries, keys, values -> (T, d_v): PyTorch's fused kernel with its own causal mask."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


@exercise(
    "05.2",
    title="Additive attention weights",
    kind="transcription",
    hints=(
        "Score each key separately: concatenate q with that key (torch.cat), multiply by W, squash with "
        "tanh, read out with w.",
        "You need one score per key (5 numbers), then softmax over those 5.",
    ),
)
def additive_weights(q: torch.Tensor, K: torch.Tensor, W: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(d,), (T, d), (h, 2d), (h,) -> (T,) weights, computed by splitting W instead of concatenating."""
    d = q.shape[-1]
    scores = torch.tanh(W[:, :d] @ q + K @ W[:, d:].T) @ w  # (T,): W[q; k] = W₁q + W₂k
    return torch.exp(scores - scores.max()) / torch.exp(scores - scores.max()).sum()


@exercise(
    "05.3",
    title="Variance of q·k, before and after the √d",
    kind="predict",
    rtol=0.05,
    atol=0.0,
    hints=(
        "For independent unit-variance entries, each product q_i k_i has variance 1. How many such "
        "products does a dot product of dimension d add up?",
        "Dividing a random variable by c divides its variance by c².",
    ),
)
def variance_ratios() -> torch.Tensor:
    """[Var(q·k) at d=256 / at d=16, the same ratio after dividing each dot product by √d]."""
    return torch.tensor([256 / 16, 1.0])


@exercise(
    "05.4",
    title="Multi-head attention with PyTorch's kernel",
    kind="transcription",
    atol=1e-10,
    hints=(
        "in_proj_weight stacks Wq, Wk and Wv along dim 0 (nn.Linear layout: out × in); chunk it in "
        "three. Heads are a reshape: (B, T, H·d) -> (B, H, T, d).",
        "Before merging the heads back into (1, 5, 8), the head axis must sit next to the feature axis "
        "again: compare the order of dimensions you have with the one you need.",
    ),
)
def mha_output(mha: nn.MultiheadAttention, x: torch.Tensor) -> torch.Tensor:
    """The module's own forward pass (self-attention, no weights returned)."""
    with torch.no_grad():
        return mha(x, x, x, need_weights=False)[0]


def _attention_cases():
    g = torch.Generator().manual_seed(505)
    for t_q, t_k in ((3, 3), (4, 6), (1, 5)):
        q, k, v = torch.randn(t_q, 4, generator=g), torch.randn(t_k, 4, generator=g), torch.randn(t_k, 3, generator=g)
        keep = torch.rand(t_q, t_k, generator=g) > 0.3
        keep[:, 0] = True  # every row keeps at least one key
        yield (q, k, v, keep), {}


@exercise(
    "05.5",
    title="Find the bug in masked attention",
    kind="debug",
    atol=1e-5,
    calls=lambda: _attention_cases(),
    hints=(
        "Print the weights for a small example and sum them along each axis: which sums should be 1?",
        "Each query's weights are a distribution over the keys.",
    ),
)
def masked_attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """(Tq, d), (Tk, d), (Tk, dv), bool (Tq, Tk) True = may attend -> (Tq, dv), by PyTorch's kernel."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=keep)


@exercise(
    "05.6",
    title="Attention over identical keys",
    kind="understanding",
    atol=1e-10,
    hints=(
        "If every key is the same vector, how do the scores of one query compare with each other?",
        "Work out softmax([s, s, s, s, s]) by hand, then the weighted sum it produces.",
    ),
)
def identical_keys(v: torch.Tensor) -> torch.Tensor:
    """(T, dv) values -> (dv,): uniform weights 1/T, written as a sum rather than a mean."""
    return v.sum(dim=0) / v.shape[0]


@exercise(
    "05.7",
    title="Parameters of an encoder block",
    kind="understanding",
    atol=0.0,
    rtol=0.0,
    hints=(
        "Go through the block layer by layer (section 12's figure) and count the weights and the biases "
        "of every nn.Linear and every LayerNorm.",
        "Splitting into heads slices the projections without adding any; a LayerNorm has one γ and one β per feature.",
    ),
)
def encoder_parameters(d_model: int, num_heads: int, d_ff: int) -> int:
    """Parameter count of PyTorch's own layer of these sizes (built, then counted)."""
    layer = nn.TransformerEncoderLayer(d_model, num_heads, d_ff)
    return sum(p.numel() for p in layer.parameters())
