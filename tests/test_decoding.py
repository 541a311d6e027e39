"""course_utils.decoding: batched greedy and beam search against independent references.

The next-token functions are tiny random recurrent "language models" in float64 (so there are no ties
and batched and per-sequence arithmetic agree), conditioned on a per-source initial hidden state.
"""

import math

import pytest
import torch
from nbcode import load_exports
from references import exhaustive_outputs

from course_utils.decoding import (
    SearchResult,
    beam_search,
    greedy_search,
    length_penalty,
)

NB = "06_transformer_decoder_beam_search"
BOS, EOS, PAD = 1, 0, 0


class ToyLM:
    """h_t = tanh(h_{t-1} W + E[token_t]);  log p(next) = log_softmax(h_t O + bias)."""

    def __init__(self, vocab: int, batch: int, hidden: int = 6, seed: int = 0, eos_bias: float = 0.5):
        g = torch.Generator().manual_seed(seed)
        kw = {"generator": g, "dtype": torch.float64}
        self.E = torch.randn(vocab, hidden, **kw)
        self.W = torch.randn(hidden, hidden, **kw) * 0.7
        self.O = torch.randn(hidden, vocab, **kw) * 1.5
        self.bias = torch.zeros(vocab, dtype=torch.float64)
        self.bias[EOS] = eos_bias
        self.h0 = torch.randn(batch, hidden, **kw)

    def _next(self, h, tok):
        return torch.tanh(h @ self.W + self.E[tok])

    def step(self, tokens, h0):  # stateless: re-read the whole prefix
        h = h0
        for t in range(tokens.shape[1]):
            h = self._next(h, tokens[:, t])
        return (h @ self.O + self.bias).log_softmax(-1)

    def step_stateful(self, tokens, h):  # incremental: the state is the hidden vector after the prefix
        h = self._next(h, tokens[:, -1])
        return (h @ self.O + self.bias).log_softmax(-1), h

    def single(self, b):
        """The one-sequence interface of the notebook: tokens (t,) -> log-probs (V,)."""
        return lambda toks: self.step(toks[None], self.h0[b : b + 1])[0]


def search_kwargs(max_len):
    return {"bos_id": BOS, "eos_id": EOS, "pad_id": PAD, "max_len": max_len}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_width_one_equals_greedy(seed):
    lm = ToyLM(vocab=7, batch=5, seed=seed)
    greedy = greedy_search(lm.step, lm.h0, **search_kwargs(6))
    beam = beam_search(lm.step, lm.h0, beam_size=1, **search_kwargs(6))
    assert greedy.to_lists() == beam.to_lists()
    torch.testing.assert_close(greedy.log_probs, beam.log_probs)
    assert torch.equal(greedy.finished, beam.finished)


@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_wide_beam_equals_exhaustive_search(alpha):
    vocab, max_len, batch = 4, 3, 3
    lm = ToyLM(vocab=vocab, batch=batch, seed=3, eos_bias=0.0)
    wide = beam_search(lm.step, lm.h0, beam_size=vocab**max_len, n_best=5, alpha=alpha, **search_kwargs(max_len))
    for b in range(batch):
        ref = exhaustive_outputs(lm.single(b), vocab, max_len, alpha, bos=BOS, eos=EOS)[:5]
        assert wide.to_lists()[b] == [h[0] for h in ref]
        torch.testing.assert_close(wide.scores[b], torch.tensor([h[2] for h in ref], dtype=torch.float64))
        torch.testing.assert_close(wide.log_probs[b], torch.tensor([h[1] for h in ref], dtype=torch.float64))


@pytest.mark.parametrize("beam_size,alpha", [(2, 0.0), (3, 0.6), (5, 1.0)])
def test_batched_equals_notebook_single_sequence_version(beam_size, alpha):
    nb = load_exports(NB)
    lm = ToyLM(vocab=9, batch=6, seed=4)
    batched = beam_search(lm.step, lm.h0, beam_size=beam_size, n_best=beam_size, alpha=alpha, **search_kwargs(7))
    for b in range(6):
        single = nb.beam_search_single(
            lm.single(b), BOS, EOS, max_len=7, beam_size=beam_size, alpha=alpha, n_best=beam_size
        )
        assert batched.to_lists()[b][: len(single)] == [h[0] for h in single]
        torch.testing.assert_close(
            batched.scores[b, : len(single)], torch.tensor([h[2] for h in single], dtype=torch.float64)
        )


def test_greedy_equals_notebook_single_sequence_greedy():
    nb = load_exports(NB)
    lm = ToyLM(vocab=8, batch=4, seed=5)
    batched = greedy_search(lm.step, lm.h0, **search_kwargs(6))
    for b in range(4):
        tokens, lp = nb.greedy_decode_single(lm.single(b), BOS, EOS, max_len=6)
        assert batched.best()[b] == tokens
        assert math.isclose(batched.log_probs[b, 0].item(), lp, rel_tol=1e-9)


def test_stateful_step_function_is_reordered_with_the_beams():
    lm = ToyLM(vocab=6, batch=4, seed=6)
    plain = beam_search(lm.step, lm.h0, beam_size=3, n_best=3, **search_kwargs(6))
    stateful = beam_search(lm.step_stateful, lm.h0, beam_size=3, n_best=3, **search_kwargs(6))
    assert plain.to_lists() == stateful.to_lists()
    torch.testing.assert_close(plain.scores, stateful.scores)
    g_plain = greedy_search(lm.step, lm.h0, **search_kwargs(6))
    g_state = greedy_search(lm.step_stateful, lm.h0, **search_kwargs(6))
    assert g_plain.to_lists() == g_state.to_lists()


def test_finished_hypotheses_are_kept_and_padded():
    # A step function where EOS is best right away, but a long sequence is better overall:
    # the finished one-token hypothesis must stay in the n-best list, padded after EOS.
    vocab = 4  # 0 EOS, 1 BOS, 2 "a", 3 "b"

    def step(tokens, state):
        n = tokens.shape[0]
        if tokens.shape[1] == 1:
            probs = torch.tensor([0.5, 0.0, 0.3, 0.2])
        else:
            probs = torch.tensor([0.05, 0.0, 0.9, 0.05])
        return probs.log().expand(n, vocab)

    res = beam_search(step, None, batch_size=2, beam_size=2, n_best=2, **search_kwargs(4))
    assert res.to_lists()[0][0] == [EOS]  # P = 0.5 beats every longer sequence
    assert res.finished[0, 0] and res.lengths[0, 0] == 1
    assert torch.all(res.tokens[0, 0, 1:] == PAD)
    greedy = greedy_search(step, None, batch_size=2, **search_kwargs(4))
    assert greedy.best() == [[EOS], [EOS]]
    # With max_len=4 the runner-up "a a a a" never emits EOS and is returned unfinished.
    runner_up = res.to_lists()[0][1]
    assert runner_up == [2, 2, 2, 2] and not res.finished[0, 1]
    torch.testing.assert_close(res.log_probs[0, 1], torch.tensor(math.log(0.3 * 0.9**3)))


def test_n_best_sorted_by_normalised_score_and_length_penalty():
    lm = ToyLM(vocab=6, batch=5, seed=7)
    for alpha in (0.0, 0.8):
        res = beam_search(lm.step, lm.h0, beam_size=4, n_best=4, alpha=alpha, **search_kwargs(6))
        assert torch.all(res.scores[:, :-1] >= res.scores[:, 1:])
        expected = res.log_probs / length_penalty(res.lengths, alpha).to(res.log_probs)
        torch.testing.assert_close(res.scores, expected)
        for hyps, lens in zip(res.to_lists(), res.lengths.tolist()):
            assert [len(h) for h in hyps] == lens[: len(hyps)]
    assert length_penalty(4, 1.0).item() == pytest.approx(1.5)


def test_impossible_tokens_are_never_chosen():
    # Only 2 of 5 tokens are ever possible: a beam of 4 must not fill up with -inf hypotheses.
    def step(tokens, state):
        lp = torch.full((tokens.shape[0], 5), -math.inf)
        lp[:, 0], lp[:, 3] = math.log(0.4), math.log(0.6)
        return lp

    res = beam_search(step, None, batch_size=1, beam_size=4, n_best=4, **search_kwargs(2))
    hyps = res.to_lists()[0]
    assert sorted(map(tuple, hyps)) == [(0,), (3, 0), (3, 3)]
    assert res.scores[0, 3].item() == -math.inf and res.lengths[0, 3] == 0


def test_bad_inputs_raise_clear_errors():
    lm = ToyLM(vocab=5, batch=2, seed=8)
    kw = search_kwargs(4)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(lm.step, lm.h0, beam_size=0, **kw)
    with pytest.raises(ValueError, match="n_best"):
        beam_search(lm.step, lm.h0, beam_size=2, n_best=3, **kw)
    with pytest.raises(ValueError, match="alpha"):
        beam_search(lm.step, lm.h0, alpha=-1.0, **kw)
    with pytest.raises(ValueError, match="max_len"):
        greedy_search(lm.step, lm.h0, bos_id=BOS, eos_id=EOS, max_len=0)
    with pytest.raises(ValueError, match=r"shape \(N, V\)"):
        beam_search(lambda t, s: lm.step(t, s)[:, None, :], lm.h0, **kw)  # (N, 1, V)
    with pytest.raises(ValueError, match=r"shape \(N, V\)"):
        greedy_search(lambda t, s: lm.step(t, s)[:1], lm.h0, **kw)  # wrong number of rows
    with pytest.raises(ValueError, match="normalised"):
        beam_search(lambda t, s: lm.step(t, s).exp(), lm.h0, **kw)  # probabilities, not log-probs
    with pytest.raises(ValueError, match="batch_size"):
        greedy_search(lambda t, s: torch.zeros(t.shape[0], 3).log_softmax(-1), None, **kw)
    with pytest.raises(ValueError, match="dimension 0"):
        beam_search(lm.step, (lm.h0, torch.zeros(3, 2)), **kw)
    with pytest.raises(ValueError, match="eos_id"):
        beam_search(lm.step, lm.h0, bos_id=BOS, eos_id=99, max_len=4)
    with pytest.raises(TypeError, match="log-probabilities"):
        greedy_search(lambda t, s: t, lm.h0, **kw)  # returned the (integer) tokens


def test_result_type_and_shapes():
    lm = ToyLM(vocab=6, batch=3, seed=9)
    res = beam_search(lm.step, lm.h0, beam_size=3, n_best=2, **search_kwargs(5))
    assert isinstance(res, SearchResult)
    assert res.tokens.shape[:2] == (3, 2) and res.tokens.shape[2] <= 5
    assert res.scores.shape == res.log_probs.shape == res.lengths.shape == res.finished.shape == (3, 2)


def test_step_fn_on_another_device_is_a_clear_error():
    # a CUDA model searched without device= would hand back log-probs on the GPU; "meta" stands in here
    def step(tokens, state):
        return torch.zeros(tokens.shape[0], 4, device="meta")

    for search in (greedy_search, beam_search):
        with pytest.raises(
            ValueError,
            match=r"log-probabilities on meta but the search keeps its tokens on cpu: "
            r"pass device=",
        ):
            search(step, None, batch_size=2, **search_kwargs(3))


def test_half_precision_log_probs_are_scored_in_float32():
    lm = ToyLM(vocab=6, batch=3, seed=4)

    def step_bf16(tokens, h0):  # a bfloat16 model: its rows log-sum-exp to 0 only within ~4e-3
        return lm.step(tokens, h0).to(torch.bfloat16)

    res = beam_search(step_bf16, lm.h0, beam_size=3, n_best=2, **search_kwargs(5))
    assert res.log_probs.dtype == torch.float32
    for b, hyps in enumerate(res.to_lists()):
        for n, hyp in enumerate(hyps):
            prefix = torch.tensor([BOS] + hyp)
            steps = [
                step_bf16(prefix[None, : t + 1], lm.h0[b : b + 1])[0, prefix[t + 1]].float() for t in range(len(hyp))
            ]
            total = torch.zeros((), dtype=torch.float32)
            for lp in steps:  # the bf16 entries, summed one step at a time in float32
                total = total + lp
            torch.testing.assert_close(res.log_probs[b, n], total, rtol=1e-6, atol=1e-6)
