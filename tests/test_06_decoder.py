"""Notebook 06's own teaching code (its `# export` cells) against PyTorch and independent references."""

import functools
import math

import pytest
import torch
from nbcode import load_exports
from references import exhaustive_outputs
from torch import nn

from course_utils.decoding import length_penalty
from course_utils.number_words import BOS_ID, EOS_ID, MAX_TGT_LEN, PAD_ID, NumberBatches, Seq2SeqTransformer, make_batch
from course_utils.train import accuracy, evaluate, fit

NB = "06_transformer_decoder_beam_search"


@pytest.fixture(scope="module")
def nb():
    return load_exports(NB)


# ----------------------------------------------------------------------------- decoder block
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("with_padding", [False, True])
def test_decoder_block_matches_torch_decoder_layer(nb, norm_first, with_padding):
    torch.manual_seed(0)
    b, t, s, d, heads, ff = 3, 7, 5, 24, 3, 40
    layer = nn.TransformerDecoderLayer(
        d, heads, ff, dropout=0.0, activation="relu", batch_first=True, norm_first=norm_first
    ).eval()
    block = nb.load_torch_decoder_weights(nb.DecoderBlock(d, heads, ff), layer)
    x, memory = torch.randn(b, t, d), torch.randn(b, s, d)
    keep = torch.ones(b, s, dtype=torch.bool)  # the notebook's convention: True = a real token (may attend)
    if with_padding:
        keep[1, 3:] = False
        keep[2, 4:] = False
    ours = block(x, memory, keep if with_padding else None)
    # PyTorch's memory_key_padding_mask is the opposite: True = padding.
    theirs = layer(
        x,
        memory,
        tgt_mask=nn.Transformer.generate_square_subsequent_mask(t),
        tgt_is_causal=True,
        memory_key_padding_mask=~keep if with_padding else None,
    )
    torch.testing.assert_close(ours, theirs)


def test_decoder_block_memory_mask_is_true_for_keep(nb):
    """memory_keep uses True = may attend, like causal_mask: memory positions marked False cannot matter."""
    torch.manual_seed(3)
    block = nb.DecoderBlock(16, 2, 32).eval()
    x, memory = torch.randn(2, 4, 16), torch.randn(2, 5, 16)
    keep = torch.tensor([[True] * 5, [True, True, False, False, False]])
    changed = memory.clone()
    changed[1, 2:] = torch.randn(3, 16)  # only the masked-out positions of source 1 change
    torch.testing.assert_close(block(x, changed, keep), block(x, memory, keep))
    assert not torch.allclose(block(x, changed, ~keep)[1], block(x, memory, ~keep)[1])  # the flipped mask reads them
    # a keep mask of all True is the same as no mask
    torch.testing.assert_close(block(x, memory, torch.ones(2, 5, dtype=torch.bool)), block(x, memory))


def test_decoder_block_is_causal_and_gradients_flow(nb):
    torch.manual_seed(1)
    block = nb.DecoderBlock(16, 2, 32, norm_first=True)
    x, memory = torch.randn(2, 6, 16, requires_grad=True), torch.randn(2, 3, 16)
    out = block(x, memory)
    changed = x.detach().clone()
    changed[:, 4:] += 1.0
    torch.testing.assert_close(block(changed, memory)[:, :4], out[:, :4])
    out[:, 2].sum().backward()
    assert x.grad[:, 3:].abs().max() == 0 and x.grad[:, :3].abs().max() > 0


def test_decoder_block_rejects_gelu_layer(nb):
    layer = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, activation="gelu", batch_first=True)
    with pytest.raises(ValueError, match="ReLU"):
        nb.load_torch_decoder_weights(nb.DecoderBlock(8, 2, 16), layer)


# ----------------------------------------------------------------------------- single-sequence search
def random_lm(vocab, seed, eos=0):
    """A prefix-dependent random next-token function (tokens (t,) -> log-probs (V,)), in float64."""
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(vocab, 5, generator=g, dtype=torch.float64)
    w = torch.randn(5, 5, generator=g, dtype=torch.float64) * 0.8
    out = torch.randn(5, vocab, generator=g, dtype=torch.float64) * 1.5

    def step(tokens):
        h = torch.zeros(5, dtype=torch.float64)
        for tok in tokens.tolist():
            h = torch.tanh(h @ w + emb[tok])
        return (h @ out).log_softmax(-1)

    return step


@pytest.mark.parametrize("seed,alpha", [(0, 0.0), (1, 0.5), (2, 1.0)])
def test_exhaustive_search_and_wide_beam_agree_with_enumeration(nb, seed, alpha):
    vocab, max_len = 4, 3
    step = random_lm(vocab, seed)
    reference = exhaustive_outputs(step, vocab, max_len, alpha, bos=1, eos=0)
    exhaustive = nb.exhaustive_search(step, 1, 0, max_len, alpha)
    assert [h[0] for h in exhaustive] == [h[0] for h in reference]
    assert all(math.isclose(a[1], b[1], rel_tol=1e-9) for a, b in zip(exhaustive, reference))
    wide = nb.beam_search_single(step, 1, 0, max_len, beam_size=vocab**max_len, alpha=alpha, n_best=6)
    assert [h[0] for h in wide] == [h[0] for h in reference[:6]]
    assert all(math.isclose(h[2], nb.gnmt_score(h[1], len(h[0]), alpha)) for h in wide)


def test_width_one_is_greedy_and_beam_never_beats_exhaustive(nb):
    for seed in range(4):
        step = random_lm(6, seed + 10)
        greedy_tokens, greedy_lp = nb.greedy_decode_single(step, 1, 0, max_len=5)
        one = nb.beam_search_single(step, 1, 0, max_len=5, beam_size=1)[0]
        assert one[0] == greedy_tokens and math.isclose(one[1], greedy_lp)
        best = nb.exhaustive_search(step, 1, 0, max_len=5)[0]
        beam = nb.beam_search_single(step, 1, 0, max_len=5, beam_size=3)[0]
        assert best[1] >= beam[1] - 1e-12


def test_gnmt_score_matches_course_utils_length_penalty(nb):
    for length, alpha in [(1, 0.0), (4, 0.6), (9, 1.3)]:
        expected = -2.5 / length_penalty(length, alpha).item()  # float32: rounded to about 1e-7
        assert math.isclose(nb.gnmt_score(-2.5, length, alpha), expected, rel_tol=1e-6)


def test_sampling_cold_is_greedy_and_warm_matches_distribution(nb):
    step = random_lm(5, 3)
    gen = torch.Generator().manual_seed(0)
    assert (
        nb.sample_single(step, 1, 0, 6, temperature=1e-4, generator=gen)[0] == nb.greedy_decode_single(step, 1, 0, 6)[0]
    )
    # One-step outputs: first-token frequencies follow the model's distribution.
    probs = step(torch.tensor([1])).exp()
    counts = torch.zeros(5)
    for _ in range(3000):
        counts[nb.sample_single(step, 1, 0, 1, temperature=1.0, generator=gen)[0][0]] += 1
    torch.testing.assert_close(counts / counts.sum(), probs.float(), atol=0.03, rtol=0)


def test_sequence_log_probs_sums_step_by_step_log_probs(nb, small_model):
    numbers = [3, 47, 802]
    outputs = [[7, 2], [5, 9, 11, 2], [4, 4, 4]]  # any token ids: with and without <eos>, different lengths
    got = nb.sequence_log_probs(small_model, numbers, outputs)
    src, _, _ = make_batch(numbers)
    for i, out in enumerate(outputs):
        total, prefix = 0.0, [BOS_ID]
        for tok in out:  # one decoder call per token, on the prefix only
            logits = small_model(src[i : i + 1], torch.tensor([prefix]))[0, -1]
            total += logits.log_softmax(-1)[tok].item()
            prefix.append(tok)
        assert got[i].item() == pytest.approx(total, abs=1e-4)


# ----------------------------------------------------------------------------- BLEU and copying
def test_bleu_against_hand_counts(nb):
    ref = "the cat sat on the mat".split()
    assert nb.bleu(ref, ref) == pytest.approx(1.0)
    # "the cat sat on a mat": unigrams 5/6, bigrams 3/5, same length.
    cand = "the cat sat on a mat".split()
    assert nb.bleu(cand, ref, max_n=2) == pytest.approx(math.sqrt(5 / 6 * 3 / 5))
    # "the the the": clipped unigram 2/3, no bigram "the the" in the reference -> 0 for BLEU-2.
    assert nb.bleu("the the the".split(), ref, max_n=1) == pytest.approx(2 / 3 * math.exp(1 - 6 / 3))
    assert nb.bleu("the the the".split(), ref, max_n=2) == 0.0
    # Too short for any 4-gram -> BLEU-4 is 0; empty output -> 0.
    assert nb.bleu("the cat".split(), ref) == 0.0
    assert nb.bleu([], ref) == 0.0
    # Longer than the reference: no brevity penalty.
    assert nb.bleu("the cat sat on the mat today".split(), ref, max_n=1) == pytest.approx(6 / 7)


def test_copy_distribution_mixes_generation_and_copying(nb):
    torch.manual_seed(2)
    b, v, s = 3, 7, 5
    p_vocab = torch.softmax(torch.randn(b, v), -1)
    attention = torch.softmax(torch.randn(b, s), -1)
    source = torch.randint(0, v, (b, s))
    p_gen = torch.rand(b, 1)
    mixed = nb.copy_distribution(p_vocab, attention, source, p_gen)
    torch.testing.assert_close(mixed.sum(-1), torch.ones(b))
    expected = p_gen * p_vocab
    for i in range(b):
        for j in range(s):
            expected[i, source[i, j]] += (1 - p_gen[i, 0]) * attention[i, j]
    torch.testing.assert_close(mixed, expected)
    torch.testing.assert_close(nb.copy_distribution(p_vocab, attention, source, torch.ones(b, 1)), p_vocab)


# ----------------------------------------------------------------------------- training steps
@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return Seq2SeqTransformer(d_model=32, num_heads=2, num_layers=1, dim_feedforward=64).eval()


def test_teacher_forcing_loss_and_step_are_mean_token_cross_entropy(nb, small_model):
    src, tgt_in, tgt_out = make_batch([5, 77, 431])
    logits = small_model(src, tgt_in)
    log_probs = logits.log_softmax(-1)
    terms = [-log_probs[b, t, tgt_out[b, t]] for b in range(3) for t in range(MAX_TGT_LEN) if tgt_out[b, t] != PAD_ID]
    expected = torch.stack(terms).mean()
    torch.testing.assert_close(nb.teacher_forcing_loss(logits, tgt_out), expected)
    out = nb.teacher_forcing_step(small_model, (src, tgt_in, tgt_out))
    torch.testing.assert_close(out.loss, expected)
    assert out.outputs.shape == (len(terms), 32) and torch.equal(out.targets, tgt_out[tgt_out != PAD_ID])


def test_scheduled_sampling_inputs(nb, small_model):
    src, tgt_in, tgt_out = make_batch([8, 64, 512, 730])
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(nb.scheduled_sampling_inputs(small_model, src, tgt_in, 0.0, gen), tgt_in)
    swapped = nb.scheduled_sampling_inputs(small_model, src, tgt_in, 1.0, gen)
    fixed = (tgt_in == PAD_ID) | (tgt_in == BOS_ID)
    assert torch.equal(swapped[fixed], tgt_in[fixed])
    guesses = small_model(src, tgt_in).argmax(-1)
    assert torch.equal(swapped[:, 1:][~fixed[:, 1:]], guesses[:, :-1][~fixed[:, 1:]])  # previous position's guess
    noisy = nb.scheduled_sampling_inputs(small_model, src, tgt_in, 1.0, gen, source="random")
    assert torch.all(noisy[~fixed] >= 3) and torch.equal(noisy[fixed], tgt_in[fixed])
    with pytest.raises(ValueError):
        nb.scheduled_sampling_inputs(small_model, src, tgt_in, 1.5)
    with pytest.raises(ValueError):
        nb.scheduled_sampling_inputs(small_model, src, tgt_in, 0.5, source="oracle")
    # the step trains on the mixed inputs: with p = 1 and model guesses, it is teacher forcing on `swapped`
    small_model.train()
    torch.manual_seed(1)
    a = nb.scheduled_sampling_step(small_model, (src, tgt_in, tgt_out), 1.0, torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    b = nb.teacher_forcing_step(
        small_model,
        (src, nb.scheduled_sampling_inputs(small_model, src, tgt_in, 1.0, torch.Generator().manual_seed(0)), tgt_out),
    )
    small_model.eval()
    torch.testing.assert_close(a.loss, b.loss)


def test_non_autoregressive_helpers(nb, small_model):
    assert nb.placeholder_inputs(2).tolist() == [[BOS_ID] * MAX_TGT_LEN] * 2
    src, _, tgt_out = make_batch([4, 61, 900])
    out = nb.non_autoregressive_step(small_model, (src, torch.zeros_like(tgt_out), tgt_out))  # tgt_in is ignored
    expected = nb.teacher_forcing_step(small_model, (src, nb.placeholder_inputs(3), tgt_out))
    torch.testing.assert_close(out.loss, expected.loss)
    decoded = nb.non_autoregressive_decode(small_model, [4, 61, 900])
    guesses = small_model(src, nb.placeholder_inputs(3)).argmax(-1).tolist()
    assert decoded == [g[: g.index(EOS_ID) + 1] if EOS_ID in g else g for g in guesses]


def test_the_steps_train_through_fit_and_resume_exactly(nb, tmp_path):
    """The notebook's step + course_utils.train.fit: the loss falls, and a resumed run equals an uninterrupted one."""

    def run(folder, epochs, resume=False):
        torch.manual_seed(0)
        model = Seq2SeqTransformer(d_model=16, num_heads=2, num_layers=1, dim_feedforward=32, dropout=0.1)
        batches = NumberBatches(list(range(0, 1000, 25)), batch_size=10, seed=2)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        sampling = functools.partial(nb.scheduled_sampling_step, prob=0.3, source="random", generator=batches.generator)
        history = fit(
            model,
            batches,
            optimizer=optimizer,
            epochs=epochs,
            step=sampling,
            metrics={"acc": accuracy},
            checkpoint_dir=folder,
            best_key="train_loss",
            resume=resume,
            show_progress=False,
        )
        return model, history

    whole, history = run(tmp_path / "a", 3)
    assert history["train_loss"][-1] < history["train_loss"][0]
    run(tmp_path / "b", 2)
    resumed, resumed_history = run(tmp_path / "b", 3, resume=True)
    assert resumed_history == history
    assert all(torch.equal(p, q) for p, q in zip(whole.parameters(), resumed.parameters()))
    stats = evaluate(
        whole, NumberBatches([5, 55, 555], shuffle=False), step=nb.teacher_forcing_step, metrics={"acc": accuracy}
    )
    assert 0 <= stats["acc"] <= 1 and stats["loss"] > 0


# ----------------------------------------------------------------------------- schedules and the length classifier
def test_schedules_start_low_rise_and_stay_in_range(nb):
    grid = [i / 50 for i in range(51)]
    for schedule in (nb.linear_schedule, nb.exponential_schedule, nb.inverse_sigmoid_schedule):
        values = [schedule(u) for u in grid]
        assert all(0.0 <= v <= 1.0 for v in values)
        assert all(b >= a for a, b in zip(values, values[1:])), schedule.__name__
    assert nb.linear_schedule(0.0) == 0.0 and nb.linear_schedule(0.3) == 0.3 and nb.linear_schedule(0.9) == 0.5
    assert nb.exponential_schedule(0.0) == 0.0
    # Bengio et al.: teacher-forcing probability k / (k + exp(i / k)) with i = k^2 u
    k = 5.0
    for u in (0.0, 0.4, 1.0):
        assert nb.inverse_sigmoid_schedule(u, k) == pytest.approx(1 - k / (k + math.exp(k * k * u / k)))


def test_scheduled_sampling_step_follows_its_schedule(nb, small_model):
    batch = make_batch([8, 64, 512, 730])
    seen = []

    def schedule(u):
        seen.append(u)
        return 0.0 if u < 0.5 else 1.0

    step = nb.ScheduledSamplingStep(schedule, total_steps=4, generator=torch.Generator().manual_seed(0))
    small_model.train()
    try:
        torch.manual_seed(0)
        first = step(small_model, batch)  # p = 0: exactly teacher forcing
        torch.manual_seed(0)
        torch.testing.assert_close(first.loss, nb.teacher_forcing_step(small_model, batch).loss)
        step(small_model, batch)
        torch.manual_seed(0)
        third = step(small_model, batch)  # p = 1: every input is the model's own guess
        swapped = nb.scheduled_sampling_inputs(small_model, batch[0], batch[1], 1.0)
        torch.manual_seed(0)
        torch.testing.assert_close(third.loss, nb.teacher_forcing_step(small_model, (batch[0], swapped, batch[2])).loss)
    finally:
        small_model.eval()
    assert seen == [0.0, 0.25, 0.5] and step.probs == [0.0, 0.0, 1.0]
    # eval mode (fit's validation pass): plain teacher forcing, and the schedule does not advance
    torch.testing.assert_close(step(small_model, batch).loss, nb.teacher_forcing_step(small_model, batch).loss)
    assert len(step.probs) == 3
    with pytest.raises(ValueError, match="total_steps"):
        nb.ScheduledSamplingStep(schedule, total_steps=0)


def test_length_classifier_pools_only_real_tokens(nb):
    torch.manual_seed(4)
    head = nb.LengthClassifier(8, 5)
    memory = torch.randn(2, 3, 8)
    keep = torch.tensor([[True, True, True], [False, True, True]])  # source 1 has one padding position
    changed = memory.clone()
    changed[1, 0] = 100.0  # padding content must not matter
    torch.testing.assert_close(head(changed, keep), head(memory, keep))
    expected = head.linear(torch.stack([memory[0].mean(0), memory[1, 1:].mean(0)]))
    torch.testing.assert_close(head(memory, keep), expected)
    assert head(memory, keep).shape == (2, 5)
