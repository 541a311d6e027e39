"""Incremental decoding with a KV cache vs recomputing the whole prefix, at several sequence lengths.

    python benchmarks/kv_cache.py [--device cpu|cuda] [--lengths 64 128 256 512] [--d-model 128] [--layers 4]

A decoder-only Transformer (notebook 06b's ``TinyGPT``, restated here so that the script stands alone;
``tests/test_benchmarks.py`` checks that both compute the same logits from the same weights) decodes a fixed
random token sequence one token at a time, three ways:

1. recompute: every step feeds the whole prefix, as a generation loop without a cache does;
2. ``torch.cat`` cache: every step feeds the newest token; keys and values are appended with ``torch.cat``
   (notebook 06b's ``ConcatKVCache``), which copies everything stored so far;
3. ``course_utils.kv_cache.KVCache``: the same, with buffers allocated once and written in place.

The logits of every step must agree (float32 tolerance) before any time is reported. Decoding a fixed
sequence instead of the model's own greedy choices costs the same per step and cannot diverge on a near-tie.
The printed speed-up is (1) / (3), the median of ``--repeats`` runs, for each length in one run.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # course_utils, when run from a clone

from course_utils.device import describe_device, get_device, synchronize  # noqa: E402
from course_utils.kv_cache import KVCache  # noqa: E402

VOCAB_SIZE = 43  # notebook 06b's vocabulary


class Attention(nn.Module):
    """Causal multi-head self-attention; with a cache, ``x`` holds only the new positions."""

    def __init__(self, d_model: int, num_heads: int, layer: int) -> None:
        super().__init__()
        self.num_heads, self.layer = num_heads, layer
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d_model, d_model) for _ in range(4))

    def forward(self, x: torch.Tensor, cache=None) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = (p(x).view(b, t, self.num_heads, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        if cache is not None:
            k, v = cache.append(self.layer, k, v)  # (B, H, past + t, hd)
        past = k.shape[2] - t
        keep = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(diagonal=past)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # (B, H, t, hd)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    """Pre-norm decoder-only block (parameter names as in notebook 06b's DecoderOnlyBlock)."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, layer: int) -> None:
        super().__init__()
        self.self_attn = Attention(d_model, num_heads, layer)
        self.feed_forward = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, cache=None) -> torch.Tensor:
        x = x + self.self_attn(self.norm1(x), cache)
        return x + self.feed_forward(self.norm2(x))


class DecoderOnlyLM(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, V); state_dict-compatible with notebook 06b's TinyGPT."""

    def __init__(self, vocab_size: int, d_model: int, num_heads: int, num_layers: int, d_ff: int, max_len: int) -> None:
        super().__init__()
        self.tok_embed, self.pos_embed = nn.Embedding(vocab_size, d_model), nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(Block(d_model, num_heads, d_ff, i) for i in range(num_layers))
        self.norm, self.head = nn.LayerNorm(d_model), nn.Linear(d_model, vocab_size)

    def forward(self, tokens: torch.Tensor, cache=None) -> torch.Tensor:
        start = 0 if cache is None else cache.length
        x = self.tok_embed(tokens) + self.pos_embed(torch.arange(start, start + tokens.shape[1], device=tokens.device))
        for block in self.blocks:
            x = block(x, cache)
        return self.head(self.norm(x))


class ConcatCache:
    """Notebook 06b's ConcatKVCache: keys and values grown by torch.cat at every step."""

    def __init__(self, num_layers: int) -> None:
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers

    @property
    def length(self) -> int:
        return min(0 if k is None else k.shape[2] for k in self.keys)

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys[layer] is not None:
            k, v = torch.cat([self.keys[layer], k], dim=2), torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


@torch.no_grad()
def decode(model: DecoderOnlyLM, seq: torch.Tensor, cache=None) -> torch.Tensor:
    """Logits (B, T, V) of every step when ``seq`` (B, T) is fed token by token (recomputed when cache is None)."""
    steps = [model(seq[:, :t] if cache is None else seq[:, t - 1:t], cache)[:, -1] for t in range(1, seq.shape[1] + 1)]
    return torch.stack(steps, dim=1)


def timed(fn, repeats: int, device: torch.device) -> tuple[float, torch.Tensor]:
    """Median wall time of ``repeats`` calls (after one warm-up call) and the last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        result = fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> dict[int, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: COURSE_DEVICE or the best available)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch (default 1: small matrices; 0 keeps torch's default)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if min(args.lengths) < 1 or args.d_model % args.heads:
        parser.error("lengths must be >= 1 and --d-model divisible by --heads")
    device = get_device(args.device)
    longest = max(args.lengths)
    torch.manual_seed(0)
    model = DecoderOnlyLM(VOCAB_SIZE, args.d_model, args.heads, args.layers, 4 * args.d_model, longest).to(device).eval()
    print(f"hardware: {describe_device(device)}")
    print(f"model: {args.layers} layers, d_model {args.d_model}, {args.heads} heads, d_ff {4 * args.d_model}, "
          f"vocabulary {VOCAB_SIZE} (untrained weights: cost does not depend on them); batch {args.batch}; "
          f"median of {args.repeats} runs")
    print(f"{'length':>7} {'recompute':>12} {'torch.cat cache':>16} {'KVCache':>10}   speed-up (KVCache vs recompute)")
    g = torch.Generator().manual_seed(1)
    speedups, largest = {}, 0.0
    for length in args.lengths:
        seq = torch.randint(VOCAB_SIZE, (args.batch, length), generator=g).to(device)
        head_dim = args.d_model // args.heads
        t_full, full = timed(lambda: decode(model, seq), args.repeats, device)
        t_cat, cat = timed(lambda: decode(model, seq, ConcatCache(args.layers)), args.repeats, device)
        t_buf, buf = timed(lambda: decode(model, seq, KVCache(args.layers, args.batch, args.heads, head_dim, length,
                                                              device=device)), args.repeats, device)
        for other in (cat, buf):  # every step's logits, before any time is reported
            torch.testing.assert_close(other, full, atol=1e-4, rtol=1e-4)
            largest = max(largest, (other - full).abs().max().item())
        speedups[length] = t_full / t_buf
        print(f"{length:>7} {t_full * 1e3:>9.1f} ms {t_cat * 1e3:>13.1f} ms {t_buf * 1e3:>7.1f} ms   "
              f"{speedups[length]:6.1f}x   (torch.cat cache {t_full / t_cat:.1f}x)")
    print(f"logits of every step identical within float32 tolerance (largest difference {largest:.1e})")
    lengths = sorted(speedups)
    if len(lengths) > 1:
        growth = math.log(speedups[lengths[-1]] / speedups[lengths[0]]) / math.log(lengths[-1] / lengths[0])
        print(f"speed-up grows like length^{growth:.2f} from {lengths[0]} to {lengths[-1]} tokens "
              "(recompute does O(T) more work per token)")
    return speedups


if __name__ == "__main__":
    main()
