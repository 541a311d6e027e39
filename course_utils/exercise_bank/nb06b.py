"""Exercise references for notebook 06b (decoder-only models, the KV cache, sampling)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..exercises import exercise


def _same_positions(answer, expected) -> tuple[bool, str]:
    try:
        got = sorted(int(i) for i in answer)
    except (TypeError, ValueError):
        return False, f"expected a list of positions, got {answer!r}"
    return got == expected, "" if got == expected else f"got {got}"


@exercise(
    "06b.1",
    title="What a changed token can reach",
    kind="predict",
    compare=_same_positions,
    hints=(
        "The causal mask decides which inputs each output reads. Which outputs read token 3?",
        "Output i reads tokens 0..i. List every i for which 3 is among them.",
    ),
)
def reachable_outputs(changed_position: int, length: int) -> list[int]:
    """Positions i whose row of PyTorch's causal mask lets them see ``changed_position`` (0 = may attend)."""
    allowed = nn.Transformer.generate_square_subsequent_mask(length) == 0  # (T, T), True = may attend
    return [i for i in range(length) if bool(allowed[i, changed_position])]


@exercise(
    "06b.2",
    title="Multiply-adds of one attention step",
    kind="predict",
    atol=0.0,
    rtol=0.0,
    hints=(
        "Write down the shapes: with a cache there is one query; without, there are t queries. Each "
        "meets t keys of size d, and the weights then meet t values of size d.",
        "A (n, d) @ (d, m) matrix product costs n·m·d multiply-adds. Add the two products.",
    ),
)
def attention_multiply_adds(t: int, d_model: int) -> list[int]:
    """[with the cache, recomputing]: (1, d)@(d, t) + (1, t)@(t, d) and (t, d)@(d, t) + (t, t)@(t, d)."""

    def product(n: int, inner: int, m: int) -> int:
        return n * inner * m

    cached = product(1, d_model, t) + product(1, t, d_model)
    recompute = product(t, d_model, t) + product(t, t, d_model)
    return [cached, recompute]


@exercise(
    "06b.3",
    title="Size of GPT-2 small's KV cache",
    kind="understanding",
    atol=0.0,
    rtol=0.0,
    hints=(
        "What does every layer store for every position? How many numbers is that, and how many bytes is one float32?",
        "Per layer and position: one key and one value, each as wide as the model. Then multiply by the "
        "layers, the positions and 4 bytes.",
    ),
)
def cache_bytes(num_layers: int, d_model: int, length: int) -> int:
    """Bytes of the key and value tensors of every layer, allocated on the meta device (shapes only)."""
    one_layer = torch.empty(1, 1, length, d_model, device="meta")  # (B, H, T, hd) float32; heads only reshape it
    return 2 * num_layers * one_layer.nbytes


def _attention_cases():
    g = torch.Generator().manual_seed(606)
    for t, d in ((1, 3), (4, 4), (7, 5)):
        yield tuple(torch.randn(t, d, generator=g) for _ in range(3)), {}


@exercise(
    "06b.4",
    title="A KV cache that keeps nothing",
    kind="debug",
    atol=1e-5,
    rtol=1e-4,
    calls=lambda: _attention_cases(),
    hints=(
        "Print the number of keys each query attends to at every step: how many should query t see?",
        "Follow cached_k through the loop: when does it ever change?",
    ),
)
def causal_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(T, d) queries, keys, values -> (T, d) by PyTorch's fused kernel with its own causal mask."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def _nucleus_cases():
    g = torch.Generator().manual_seed(607)
    yield (torch.tensor([0.5, 0.3, 0.2]), 0.6), {}
    yield (torch.tensor([0.1, 0.7, 0.2]), 0.5), {}  # the most likely token alone crosses p
    yield (torch.tensor([0.25, 0.25, 0.25, 0.25]), 0.5), {}  # a tie: the lower ids first
    for p in (0.3, 0.8, 0.95, 1.0):
        yield (torch.softmax(torch.randn(10, generator=g) * 2, dim=0), p), {}


@exercise(
    "06b.5",
    title="A nucleus that drops the crossing token",
    kind="debug",
    atol=1e-6,
    calls=lambda: _nucleus_cases(),
    hints=(
        "Try probs = [0.5, 0.3, 0.2] with p = 0.6 by hand: which tokens belong to the nucleus, and "
        "which does the function keep? Now try p = 0.4.",
        "A token belongs to the nucleus when the tokens ranked before it have not yet reached p.",
    ),
)
def nucleus_reference(probs: torch.Tensor, p: float) -> torch.Tensor:
    """(V,), p -> (V,): walk the tokens by (probability, id) in Python floats until the mass reaches p."""
    values = probs.tolist()
    keep, mass = [0.0] * len(values), 0.0
    for i in sorted(range(len(values)), key=lambda j: (-values[j], j)):
        if mass >= p:
            break
        keep[i], mass = values[i], mass + values[i]
    total = sum(keep)
    return torch.tensor([x / total for x in keep], dtype=probs.dtype)


def _same_booleans(answer, expected) -> tuple[bool, str]:
    if not isinstance(answer, (list, tuple)) or len(answer) != 2 or not all(isinstance(a, bool) for a in answer):
        return False, f"expected two booleans, e.g. [True, False], got {answer!r}"
    return list(answer) == expected, "" if list(answer) == expected else f"got {list(answer)}"


@exercise(
    "06b.6",
    title="Does the temperature move the cut?",
    kind="understanding",
    compare=_same_booleans,
    hints=(
        "Dividing every logit by the same positive number: does it change their order? Does it change "
        "the probabilities?",
        "One cut looks only at the ranking of the tokens, the other adds up their probabilities.",
    ),
)
def cut_moves(logits: torch.Tensor, temperatures: tuple[float, float], top_k: int, top_p: float) -> list[bool]:
    """[top-k keeps the same tokens at both temperatures, top-p does]: torch.topk and a loop over the tokens."""

    def nucleus(probs: list[float]) -> set[int]:
        kept, mass = set(), 0.0
        for i in sorted(range(len(probs)), key=lambda j: (-probs[j], j)):
            if mass >= top_p:
                break
            kept.add(i)
            mass += probs[i]
        return kept

    scaled = [logits.double() / t for t in temperatures]
    top_k_sets = [set(torch.topk(z, top_k).indices.tolist()) for z in scaled]
    top_p_sets = [nucleus(torch.softmax(z, dim=-1).tolist()) for z in scaled]
    return [top_k_sets[0] == top_k_sets[1], top_p_sets[0] == top_p_sets[1]]
