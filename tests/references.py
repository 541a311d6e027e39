"""Independent reference computations shared by tests of a notebook's code and of the package's."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch


def positional_encoding_reference(length: int, dim: int) -> torch.Tensor:
    """(length, dim) float64 sinusoidal codes from the formula, one element at a time."""
    pe = torch.empty(length, dim, dtype=torch.float64)
    for pos in range(length):
        for i in range(dim // 2):
            angle = pos / 10000 ** (2 * i / dim)
            pe[pos, 2 * i], pe[pos, 2 * i + 1] = math.sin(angle), math.cos(angle)
    return pe


def exhaustive_outputs(step_1d: Callable[[torch.Tensor], torch.Tensor], vocab: int, max_len: int, alpha: float,
                       bos: int, eos: int) -> list[tuple[list[int], float, float]]:
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
