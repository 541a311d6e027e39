"""Incremental decoding with a KV cache vs recomputing the whole prefix, at several sequence lengths.

    python benchmarks/kv_cache.py [--device cpu|cuda] [--lengths 64 128 256 512] [--d-model 128] [--layers 4]

Notebook 06b's decoder-only Transformer (its ``TinyGPT``, loaded from the notebook's ``# export`` cells with
``tests/nbcode.py``, so the script times exactly the code students read) decodes a fixed random token
sequence one token at a time, three ways:

1. recompute: every step feeds the whole prefix, as a generation loop without a cache does;
2. ``torch.cat`` cache: every step feeds the newest token; keys and values are appended with ``torch.cat``
   (notebook 06b's ``ConcatKVCache``), which copies everything stored so far;
3. ``course_utils.kv_cache.KVCache`` (built by the notebook's ``kv_cache_for``): the same, with buffers
   allocated once and written in place.

The logits of every step must agree (float32 tolerance) before any time is reported. Decoding a fixed
sequence instead of the model's own greedy choices costs the same per step and cannot diverge on a near-tie.
The printed speed-up is (1) / (3), the median of ``--repeats`` runs, for each length in one run.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # course_utils, when run from a clone
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _timing, shared by the benchmarks

from _timing import timed  # noqa: E402

from course_utils.device import describe_device, get_device  # noqa: E402

NOTEBOOK = "06b_decoder_only_kv_cache_sampling"


def notebook():
    """Notebook 06b's ``# export`` cells (TinyGPT, ConcatKVCache, ...), loaded the way the tests load them."""
    sys.path.insert(0, str(ROOT / "tests"))
    from nbcode import load_exports

    return load_exports(NOTEBOOK)


@torch.no_grad()
def decode(model: torch.nn.Module, seq: torch.Tensor, cache=None) -> torch.Tensor:
    """Logits (B, T, V) of every step when ``seq`` (B, T) is fed token by token (recomputed when cache is None)."""
    steps = [
        model(seq[:, :t] if cache is None else seq[:, t - 1 : t], cache)[:, -1] for t in range(1, seq.shape[1] + 1)
    ]
    return torch.stack(steps, dim=1)


def main(argv: list[str] | None = None) -> dict[int, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: COURSE_DEVICE or the best available)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (default 1: small matrices; 0 keeps torch's default)",
    )
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if min(args.lengths) < 1 or args.d_model % args.heads:
        parser.error("lengths must be >= 1 and --d-model divisible by --heads")
    device = get_device(args.device)
    nb = notebook()
    vocab_size = len(nb.VOCAB)
    torch.manual_seed(0)
    model = nb.TinyGPT(vocab_size, args.d_model, args.heads, args.layers, 4 * args.d_model, max(args.lengths))
    model = model.to(device).eval()
    print(f"hardware: {describe_device(device)}")
    print(
        f"model: {args.layers} layers, d_model {args.d_model}, {args.heads} heads, d_ff {4 * args.d_model}, "
        f"vocabulary {vocab_size} (untrained weights: cost does not depend on them); batch {args.batch}; "
        f"median of {args.repeats} runs"
    )
    print(f"{'length':>7} {'recompute':>12} {'torch.cat cache':>16} {'KVCache':>10}   speed-up (KVCache vs recompute)")
    g = torch.Generator().manual_seed(1)
    speedups, largest = {}, 0.0
    for length in args.lengths:
        seq = torch.randint(vocab_size, (args.batch, length), generator=g).to(device)
        new_cache = {
            "recompute": lambda length: None,
            "cat": lambda length: nb.ConcatKVCache(args.layers),
            "buffer": lambda length: nb.kv_cache_for(model, args.batch, length),
        }
        (t_full, full), (t_cat, cat), (t_buf, buf) = (
            timed(lambda make=make, seq=seq, length=length: decode(model, seq, make(length)), args.repeats, device)
            for make in new_cache.values()
        )
        for other in (cat, buf):  # every step's logits, before any time is reported
            torch.testing.assert_close(other, full, atol=1e-4, rtol=1e-4)
            largest = max(largest, (other - full).abs().max().item())
        speedups[length] = t_full / t_buf
        print(
            f"{length:>7} {t_full * 1e3:>9.1f} ms {t_cat * 1e3:>13.1f} ms {t_buf * 1e3:>7.1f} ms   "
            f"{speedups[length]:6.1f}x   (torch.cat cache {t_full / t_cat:.1f}x)"
        )
    print(f"logits of every step identical within float32 tolerance (largest difference {largest:.1e})")
    lengths = sorted(speedups)
    if len(lengths) > 1:
        growth = math.log(speedups[lengths[-1]] / speedups[lengths[0]]) / math.log(lengths[-1] / lengths[0])
        print(
            f"speed-up grows like length^{growth:.2f} from {lengths[0]} to {lengths[-1]} tokens "
            "(recompute does O(T) more work per token)"
        )
    return speedups


if __name__ == "__main__":
    main()
