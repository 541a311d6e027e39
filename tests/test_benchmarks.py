"""The benchmark scripts still run (tiny sizes; their timings are not asserted - see benchmarks/)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from nbcode import load_exports

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cifar_throughput_prints_ratio_breakdown_and_ceiling(capsys):
    ratio = load("cifar_throughput").main(
        ["--device", "cpu", "--batch-size", "8", "--steps", "2", "--rounds", "1", "--warmup", "1", "--augment"]
    )
    out = capsys.readouterr().out
    assert ratio > 0 and "SYNTHETIC" in out and "ratio course_utils / notes" in out
    for part in ("notes input alone", "notes step alone", "course input alone", "course step alone", "ceiling"):
        assert part in out


def test_beam_search_benchmark_checks_identical_outputs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_RUNS", str(tmp_path))  # no saved model: it trains a tiny one
    monkeypatch.setattr(
        sys,
        "argv",
        ["beam_search.py", "--device", "cpu", "--batch", "3", "--beam", "2", "--repeats", "1", "--train-epochs", "1"],
    )
    code = load("beam_search").main()
    out = capsys.readouterr().out
    assert code in (0, 1)  # 1 only means this tiny batch is below the speed target
    assert "outputs identical for all 3 sources" in out and "speed-up of batched" in out


@pytest.mark.parametrize("seed, alpha", [(0, 0.0), (1, 0.7)])
def test_beam_search_benchmark_loop_is_the_notebooks_single_sequence_search(seed, alpha):
    """The benchmark restates notebook 06's beam_search_single so as not to import tests/: it must not drift."""
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(7, 7, generator=g).mul(2).log_softmax(-1)  # a bigram model over 7 tokens, <eos> = 0

    def step(tokens):
        return table[tokens[-1]]

    ours = load("beam_search").beam_search_single(step, 1, 0, 6, 3, alpha=alpha, n_best=3)
    notebook = load_exports("06_transformer_decoder_beam_search").beam_search_single(step, 1, 0, 6, 3, alpha, 3)
    assert ours == notebook


def test_kv_cache_benchmark_prints_a_speedup_per_length(capsys):
    speedups = load("kv_cache").main(
        ["--device", "cpu", "--lengths", "4", "8", "--d-model", "16", "--heads", "2", "--layers", "1", "--repeats", "1"]
    )
    out = capsys.readouterr().out
    assert sorted(speedups) == [4, 8] and all(s > 0 for s in speedups.values())
    assert "speed-up (KVCache vs recompute)" in out and "logits of every step identical" in out
    assert "speed-up grows like length^" in out
    for length in (4, 8):
        assert any(line.split()[:1] == [str(length)] and line.rstrip().endswith(")") for line in out.splitlines())


def test_kv_cache_benchmark_times_the_notebooks_own_model_and_caches():
    """No restated model to drift: the script decodes with notebook 06b's TinyGPT and both caches agree."""
    bench = load("kv_cache")
    nb = bench.notebook()
    assert nb.TinyGPT is load_exports("06b_decoder_only_kv_cache_sampling").TinyGPT
    torch.manual_seed(0)
    model = nb.TinyGPT(len(nb.VOCAB), d_model=16, num_heads=2, num_layers=2, d_ff=32, max_len=6).eval()
    seq = torch.randint(len(nb.VOCAB), (2, 6), generator=torch.Generator().manual_seed(1))
    full = bench.decode(model, seq)
    with torch.no_grad():
        torch.testing.assert_close(full, model(seq))  # step t of the token-by-token loop = output t of one pass
    for cache in (nb.ConcatKVCache(2), nb.kv_cache_for(model, 2, 6)):
        torch.testing.assert_close(bench.decode(model, seq, cache), full)
