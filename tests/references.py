"""Independent reference computations shared by tests of a notebook's code and of the package's."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch


def rand(*shape: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Seeded standard-normal tensor (float64 by default), independent of the global random state."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype = torch.float64) -> None:
    """assert_close with float32-sized tolerances unless ``dtype`` is float64 (then torch's defaults)."""
    tol = {} if dtype == torch.float64 else {"atol": 1e-5, "rtol": 1e-4}
    torch.testing.assert_close(actual, expected, **tol)


def random_mask(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Random boolean attention mask in which every row keeps key 0 (no fully masked rows)."""
    mask = torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) > 0.5
    mask[..., 0] = True
    return mask


def sequential_twin(W1: torch.Tensor, b1: torch.Tensor, W2: torch.Tensor, b2: torch.Tensor) -> torch.nn.Sequential:
    """Linear -> ReLU -> Linear holding copies of a from-scratch MLP's weights, stored (in, out) as x @ W + b."""
    model = torch.nn.Sequential(torch.nn.Linear(*W1.shape), torch.nn.ReLU(), torch.nn.Linear(*W2.shape))
    model.to(W1.dtype)
    with torch.no_grad():
        for layer, W, b in ((model[0], W1, b1), (model[2], W2, b2)):
            layer.weight.copy_(W.T)  # nn.Linear stores (out, in)
            layer.bias.copy_(b)
    return model


def positional_encoding_reference(length: int, dim: int) -> torch.Tensor:
    """(length, dim) float64 sinusoidal codes from the formula, one element at a time."""
    pe = torch.empty(length, dim, dtype=torch.float64)
    for pos in range(length):
        for i in range(dim // 2):
            angle = pos / 10000 ** (2 * i / dim)
            pe[pos, 2 * i], pe[pos, 2 * i + 1] = math.sin(angle), math.cos(angle)
    return pe


def exhaustive_outputs(
    step_1d: Callable[[torch.Tensor], torch.Tensor], vocab: int, max_len: int, alpha: float, bos: int, eos: int
) -> list[tuple[list[int], float, float]]:
    """Every output (ends at its first EOS, or has max_len tokens) as (tokens, log P, GNMT score), best first.

    ``step_1d(prefix (t,)) -> log-probs (V,)`` scores the next token after ``prefix`` (which starts with BOS).
    """
    hyps = []
    for length in range(1, max_len + 1):
        for seq in itertools.product(range(vocab), repeat=length):
            if eos in seq[:-1] or (seq[-1] != eos and length < max_len):
                continue
            lp = sum(step_1d(torch.tensor((bos,) + seq[:i]))[tok].item() for i, tok in enumerate(seq))
            hyps.append((list(seq), lp, lp / ((5 + length) / 6) ** alpha))
    return sorted(hyps, key=lambda h: h[2], reverse=True)
