"""Batched beam search (course_utils.decoding) vs a per-sequence loop, on the trained numbers -> words model.

    python benchmarks/beam_search.py [--device cpu|cuda] [--batch 32] [--beam 4] [--repeats 3]

Loads ``runs/06_number_words.pt`` (written by notebook 06 in full mode) when it exists, otherwise trains
the model briefly. Then it decodes the same ``--batch`` validation numbers three ways and checks that
all give identical n-best lists:

1. ``course_utils.decoding.beam_search``: every source and beam in one tensor, one model call per step;
2. a loop over sources of ``beam_search_single``, the readable single-sequence search of notebook 06
   (section 7), restated here so that the script stands alone (one model call per beam per step);
   ``tests/test_benchmarks.py`` checks that it returns what the notebook's own function returns;
3. a loop over sources of ``beam_search`` with a batch of one (isolates the gain from batching sources).

The reported speed-up is (2) / (1); the target is at least 5x.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # course_utils, when run from a clone
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _timing, shared by the benchmarks

from _timing import timed  # noqa: E402

from course_utils.decoding import beam_search  # noqa: E402
from course_utils.device import describe_device, get_device  # noqa: E402
from course_utils.number_words import (  # noqa: E402
    BOS_ID,
    EOS_ID,
    PAD_ID,
    NumberBatches,
    Seq2SeqTransformer,
    encode_numbers,
    exact_match,
    make_step_fn,
    split_numbers,
)
from course_utils.paths import runs_dir  # noqa: E402
from course_utils.train import fit  # noqa: E402

MAX_LEN = 8
N_BEST = 2


def beam_search_single(step_fn, bos_id, eos_id, max_len, beam_size, alpha=0.0, n_best=1):
    """Notebook 06's beam search for ONE sequence: ``step_fn(tokens (t,)) -> log-probs (V,)``, one call per beam
    per step. Returns up to ``n_best`` (tokens without <bos>, log-probability, GNMT score), best first."""
    beams, finished = [([bos_id], 0.0)], []
    for _ in range(max_len):
        candidates = []
        for tokens, log_p in beams:
            log_probs = step_fn(torch.tensor(tokens))  # (V,)
            top_lp, top_tok = log_probs.topk(min(beam_size, log_probs.numel()))
            candidates += [
                (tokens + [tok], log_p + lp) for lp, tok in zip(top_lp.tolist(), top_tok.tolist()) if lp > -math.inf
            ]
        candidates.sort(key=lambda c: c[1], reverse=True)
        beams = []
        for tokens, log_p in candidates[:beam_size]:  # the K best candidates survive; <eos> leaves the beam
            if tokens[-1] == eos_id:
                finished.append((tokens[1:], log_p))
            else:
                beams.append((tokens, log_p))
        if not beams:
            break
    finished += [(tokens[1:], log_p) for tokens, log_p in beams]
    ranked = [(tokens, log_p, log_p / ((5 + len(tokens)) / 6) ** alpha) for tokens, log_p in finished]
    return sorted(ranked, key=lambda h: h[2], reverse=True)[:n_best]


def teacher_forcing_step(model, batch):
    """The loss of one (src, tgt_in, tgt_out) batch, as notebook 06 trains it."""
    src, tgt_in, tgt_out = batch
    return torch.nn.functional.cross_entropy(model(src, tgt_in).flatten(0, 1), tgt_out.flatten(), ignore_index=PAD_ID)


def load_or_train(device: torch.device, train_epochs: int) -> tuple[Seq2SeqTransformer, str]:
    torch.manual_seed(0)
    model = Seq2SeqTransformer(dropout=0.1)
    checkpoint = runs_dir() / "06_number_words.pt"
    if checkpoint.exists():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(saved["state_dict"])
        origin = f"loaded {checkpoint} ({saved.get('epochs', '?')} epochs)"
    else:
        train_numbers, _ = split_numbers(200, seed=0)
        batches = NumberBatches(train_numbers, batch_size=64)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=3e-3, total_steps=train_epochs * len(batches), pct_start=0.1
        )
        start = time.perf_counter()
        fit(
            model,
            batches,
            optimizer=optimizer,
            epochs=train_epochs,
            step=teacher_forcing_step,
            device=device,
            scheduler=schedule,
            scheduler_interval="step",
            show_progress=False,
        )
        origin = f"no checkpoint at {checkpoint}: trained {train_epochs} epochs in {time.perf_counter() - start:.0f} s"
    return model.to(device).eval(), origin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: COURSE_DEVICE or the best available)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-epochs", type=int, default=30, help="used only without a checkpoint")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (default 1: the model is tiny; 0 keeps torch's default)",
    )
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    print(f"hardware: {describe_device(device)}")

    model, origin = load_or_train(device, args.train_epochs)
    print(f"model: {origin}")
    _, val_numbers = split_numbers(200, seed=0)
    numbers = val_numbers[: args.batch]
    step_fn = make_step_fn(model)
    search = {"bos_id": BOS_ID, "eos_id": EOS_ID, "max_len": MAX_LEN}

    def batched():
        return beam_search(
            step_fn, encode_numbers(model, numbers, device), beam_size=args.beam, n_best=N_BEST, **search
        )

    def single_sequence_loop():
        results = []
        for n in numbers:
            state = encode_numbers(model, [n], device)
            one = lambda tokens, state=state: step_fn(tokens.to(device)[None], state)[0].cpu()  # noqa: E731
            results.append(beam_search_single(one, BOS_ID, EOS_ID, MAX_LEN, args.beam, n_best=N_BEST))
        return results

    def batch_of_one_loop():
        return [
            beam_search(step_fn, encode_numbers(model, [n], device), beam_size=args.beam, n_best=N_BEST, **search)
            for n in numbers
        ]

    t_batched, res_batched = timed(batched, args.repeats, device)
    t_single, res_single = timed(single_sequence_loop, args.repeats, device)
    t_one, res_one = timed(batch_of_one_loop, args.repeats, device)

    # All three must agree hypothesis by hypothesis.
    lists = res_batched.to_lists()
    for b, n in enumerate(numbers):
        assert lists[b] == [h[0] for h in res_single[b]], f"number {n}: batched and single-sequence beams differ"
        assert lists[b] == res_one[b].to_lists()[0], f"number {n}: batched and batch-of-one beams differ"
        torch.testing.assert_close(
            res_batched.scores[b].cpu(), torch.tensor([h[2] for h in res_single[b]]), atol=1e-4, rtol=1e-4
        )
    print(
        f"outputs identical for all {len(numbers)} sources ({N_BEST}-best lists); "
        f"top-1 exact match {exact_match(res_batched.best(), numbers):.3f}"
    )

    print(f"batch {len(numbers)}, beam {args.beam}, max_len {MAX_LEN}, median of {args.repeats} runs:")
    print(f"  batched beam_search (1 call)           {t_batched * 1000:9.1f} ms")
    print(f"  loop of beam_search_single (notebook)  {t_single * 1000:9.1f} ms   speed-up {t_single / t_batched:6.1f}x")
    print(f"  loop of beam_search with batch 1       {t_one * 1000:9.1f} ms   speed-up {t_one / t_batched:6.1f}x")
    ratio = t_single / t_batched
    print(
        f"speed-up of batched over per-sequence loop: {ratio:.1f}x (target >= 5x): "
        f"{'OK' if ratio >= 5 else 'BELOW TARGET'}"
    )
    return 0 if ratio >= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
