"""course_utils.seq2seq: the numbers -> English words task, its batching and the small model."""

import pytest
import torch

from course_utils.decoding import beam_search, greedy_search
from course_utils.seq2seq import (BOS_ID, EOS_ID, MAX_SRC_LEN, MAX_TGT_LEN, PAD_ID, SRC_VOCAB, TGT_VOCAB,
                                  Seq2SeqTransformer, decode_target, encode_numbers, encode_source, encode_target,
                                  exact_match, make_batch, make_step_fn, non_autoregressive_decode, number_to_words,
                                  placeholder_inputs, scheduled_sampling_inputs, split_numbers, teacher_forcing_loss,
                                  train_seq2seq)

KNOWN = {
    0: "zero", 7: "seven", 10: "ten", 15: "fifteen", 19: "nineteen", 20: "twenty", 21: "twenty one",
    40: "forty", 99: "ninety nine", 100: "one hundred", 101: "one hundred one", 110: "one hundred ten",
    342: "three hundred forty two", 500: "five hundred", 919: "nine hundred nineteen",
    999: "nine hundred ninety nine",
}


def test_number_to_words_known_values():
    for n, words in KNOWN.items():
        assert " ".join(number_to_words(n)) == words


def test_number_to_words_is_one_to_one_and_bounded():
    names = {tuple(number_to_words(n)) for n in range(1000)}
    assert len(names) == 1000
    assert max(len(encode_target(n)) for n in range(1000)) == MAX_TGT_LEN
    assert max(len(encode_source(n)) for n in range(1000)) == MAX_SRC_LEN


@pytest.mark.parametrize("bad,error", [(-1, ValueError), (1000, ValueError), (3.0, TypeError), (True, TypeError)])
def test_number_to_words_rejects_bad_input(bad, error):
    with pytest.raises(error):
        number_to_words(bad)


def test_targets_end_with_exactly_one_eos_and_decode_back():
    for n in range(1000):
        ids = encode_target(n)
        assert ids[-1] == EOS_ID and ids.count(EOS_ID) == 1 and BOS_ID not in ids and PAD_ID not in ids
        assert decode_target(ids) == " ".join(number_to_words(n))
    assert decode_target([BOS_ID] + encode_target(42) + [PAD_ID, PAD_ID]) == "forty two"
    assert decode_target(encode_target(42), strip=False) == "forty two <eos>"
    assert encode_source(342) == [SRC_VOCAB.index("3"), SRC_VOCAB.index("4"), SRC_VOCAB.index("2")]


def test_make_batch_pads_shifts_and_aligns():
    src, tgt_in, tgt_out = make_batch([7, 342, 40])
    assert src.shape == (3, MAX_SRC_LEN) and tgt_in.shape == tgt_out.shape == (3, MAX_TGT_LEN)
    assert src.dtype == tgt_in.dtype == torch.long
    assert src[0].tolist() == [PAD_ID, PAD_ID, SRC_VOCAB.index("7")]          # right-aligned digits
    assert tgt_out[0].tolist() == [TGT_VOCAB.index("seven"), EOS_ID, PAD_ID, PAD_ID, PAD_ID]
    assert tgt_in[0].tolist() == [BOS_ID, TGT_VOCAB.index("seven"), PAD_ID, PAD_ID, PAD_ID]
    assert tgt_out[1].tolist() == encode_target(342)
    real = tgt_out != PAD_ID
    assert torch.equal(tgt_in[:, 1:][real[:, 1:]], tgt_out[:, :-1][real[:, 1:]])   # input = output shifted right
    assert torch.all(tgt_in[:, 0] == BOS_ID) and torch.equal(real, tgt_in != PAD_ID)
    with pytest.raises(ValueError):
        make_batch([])


def test_split_is_seeded_disjoint_and_complete():
    train, val = split_numbers(200, seed=0)
    assert len(val) == 200 and len(train) == 800
    assert sorted(train + val) == list(range(1000))
    assert set(range(20)) <= set(train) and min(val) >= 20
    assert split_numbers(200, seed=0) == (train, val)
    assert split_numbers(200, seed=1)[1] != val
    with pytest.raises(ValueError):
        split_numbers(990)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Seq2SeqTransformer(d_model=32, num_heads=2, num_layers=1, dim_feedforward=64).eval()


def test_model_shapes_and_causality(model):
    src, tgt_in, tgt_out = make_batch([3, 58, 999, 120])
    memory, src_pad = model.encode(src)
    assert memory.shape == (4, MAX_SRC_LEN, 32) and torch.equal(src_pad, src == PAD_ID)
    logits = model.decode(tgt_in, memory, src_pad)
    assert logits.shape == (4, MAX_TGT_LEN, len(TGT_VOCAB))
    torch.testing.assert_close(model(src, tgt_in), logits)
    changed = tgt_in.clone()
    changed[:, 3:] = TGT_VOCAB.index("nine")
    torch.testing.assert_close(model.decode(changed, memory, src_pad)[:, :3], logits[:, :3])
    with pytest.raises(ValueError):
        model.decode(tgt_in[0], memory, src_pad)
    with pytest.raises(ValueError, match="max_len"):
        model.decode(torch.ones(1, 40, dtype=torch.long), memory[:1], src_pad[:1])


def test_teacher_forcing_loss_is_mean_token_cross_entropy(model):
    src, tgt_in, tgt_out = make_batch([5, 77, 431])
    log_probs = model(src, tgt_in).log_softmax(-1)
    terms = [-log_probs[b, t, tgt_out[b, t]] for b in range(3) for t in range(MAX_TGT_LEN) if tgt_out[b, t] != PAD_ID]
    torch.testing.assert_close(teacher_forcing_loss(model, src, tgt_in, tgt_out), torch.stack(terms).mean())


def test_step_fn_and_searches_run_on_the_model(model):
    numbers = [4, 61, 900]
    state = encode_numbers(model, numbers)
    step = make_step_fn(model)
    log_probs = step(torch.full((3, 1), BOS_ID), state)
    assert log_probs.shape == (3, len(TGT_VOCAB))
    torch.testing.assert_close(log_probs.logsumexp(-1), torch.zeros(3))
    greedy = greedy_search(step, state, bos_id=BOS_ID, eos_id=EOS_ID, max_len=6)
    beam = beam_search(step, state, bos_id=BOS_ID, eos_id=EOS_ID, max_len=6, beam_size=3, n_best=2)
    assert greedy.tokens.shape[:2] == (3, 1) and beam.tokens.shape[:2] == (3, 2)
    assert torch.all(beam.scores[:, 0] >= beam.scores[:, 1])
    nat = non_autoregressive_decode(model, numbers)
    assert len(nat) == 3 and all(1 <= len(o) <= MAX_TGT_LEN for o in nat)
    assert placeholder_inputs(2).tolist() == [[BOS_ID] * MAX_TGT_LEN] * 2


def test_scheduled_sampling_inputs(model):
    src, tgt_in, _ = make_batch([8, 64, 512, 730])
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(scheduled_sampling_inputs(model, src, tgt_in, 0.0, gen), tgt_in)
    swapped = scheduled_sampling_inputs(model, src, tgt_in, 1.0, gen)
    fixed = (tgt_in == PAD_ID) | (tgt_in == BOS_ID)
    assert torch.equal(swapped[fixed], tgt_in[fixed])
    guesses = model(src, tgt_in).argmax(-1)
    assert torch.equal(swapped[:, 1:][~fixed[:, 1:]], guesses[:, :-1][~fixed[:, 1:]])  # previous position's guess
    noisy = scheduled_sampling_inputs(model, src, tgt_in, 1.0, gen, source="random")
    assert torch.all(noisy[~fixed] >= 3) and torch.equal(noisy[fixed], tgt_in[fixed])
    with pytest.raises(ValueError):
        scheduled_sampling_inputs(model, src, tgt_in, 1.5)
    with pytest.raises(ValueError):
        scheduled_sampling_inputs(model, src, tgt_in, 0.5, source="oracle")


def test_exact_match_requires_eos_and_ignores_the_rest():
    ok = encode_target(342)
    assert exact_match([ok, ok[:-1], ok + [PAD_ID, 9], encode_target(343)], [342, 342, 342, 342]) == 0.5
    with pytest.raises(ValueError):
        exact_match([ok], [1, 2])


def test_training_reduces_the_loss():
    torch.manual_seed(0)
    small = Seq2SeqTransformer(d_model=32, num_heads=2, num_layers=1, dim_feedforward=64)
    history = train_seq2seq(small, list(range(0, 1000, 16)), epochs=6, batch_size=16, lr=3e-3,
                            val_numbers=[5, 55, 555], show_progress=False, sampling_prob=lambda e: 0.1 * e)
    assert set(history) >= {"train_loss", "val_loss", "val_token_acc", "sampling_prob"}
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["sampling_prob"] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert not small.training
