"""course_utils.number_words: the numbers -> English words task, its batching and the small model."""

import pytest
import torch

from course_utils.decoding import beam_search, greedy_search
from course_utils.number_words import (
    BOS_ID,
    EOS_ID,
    MAX_SRC_LEN,
    MAX_TGT_LEN,
    PAD_ID,
    SRC_VOCAB,
    TGT_VOCAB,
    NumberBatches,
    Seq2SeqTransformer,
    decode_target,
    encode_numbers,
    encode_source,
    encode_target,
    exact_match,
    make_batch,
    make_step_fn,
    number_to_words,
    split_numbers,
)

KNOWN = {
    0: "zero",
    7: "seven",
    10: "ten",
    15: "fifteen",
    19: "nineteen",
    20: "twenty",
    21: "twenty one",
    40: "forty",
    99: "ninety nine",
    100: "one hundred",
    101: "one hundred one",
    110: "one hundred ten",
    342: "three hundred forty two",
    500: "five hundred",
    919: "nine hundred nineteen",
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
    assert src[0].tolist() == [PAD_ID, PAD_ID, SRC_VOCAB.index("7")]  # right-aligned digits
    assert tgt_out[0].tolist() == [TGT_VOCAB.index("seven"), EOS_ID, PAD_ID, PAD_ID, PAD_ID]
    assert tgt_in[0].tolist() == [BOS_ID, TGT_VOCAB.index("seven"), PAD_ID, PAD_ID, PAD_ID]
    assert tgt_out[1].tolist() == encode_target(342)
    real = tgt_out != PAD_ID
    assert torch.equal(tgt_in[:, 1:][real[:, 1:]], tgt_out[:, :-1][real[:, 1:]])  # input = output shifted right
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


def test_exact_match_requires_eos_and_ignores_the_rest():
    ok = encode_target(342)
    assert exact_match([ok, ok[:-1], ok + [PAD_ID, 9], encode_target(343)], [342, 342, 342, 342]) == 0.5
    with pytest.raises(ValueError):
        exact_match([ok], [1, 2])


def test_number_batches_cover_every_number_once_per_pass_in_a_seeded_order():
    numbers = list(range(100, 170))
    batches = NumberBatches(numbers, batch_size=16, seed=3)
    assert len(batches) == 5
    first, second = list(batches), list(batches)
    seen = [
        n
        for src, _, _ in first
        for n in (int("".join(SRC_VOCAB[i] for i in row if i != PAD_ID)) for row in src.tolist())
    ]
    assert sorted(seen) == numbers and [len(b[0]) for b in first] == [16, 16, 16, 16, 6]
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(first, second))  # a new order every pass
    # the order is torch.randperm on the seeded generator: the batches are make_batch of those numbers
    order = torch.randperm(70, generator=torch.Generator().manual_seed(3))[:16]
    for got, want in zip(first[0], make_batch([numbers[i] for i in order.tolist()])):
        assert torch.equal(got, want)
    again = NumberBatches(numbers, batch_size=16, seed=3)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again))
    fixed = NumberBatches(numbers, batch_size=70, shuffle=False)
    assert all(torch.equal(a, b) for a, b in zip(next(iter(fixed)), make_batch(numbers)))
    with pytest.raises(ValueError, match="at least one number"):
        NumberBatches([], batch_size=4)


@pytest.mark.parametrize("ids", [[-1], [len(TGT_VOCAB)], torch.tensor([5, -2])])
def test_token_ids_outside_the_vocabulary_are_clear_errors(ids):
    """Issue 10, fault 9: decode_target([-1]) used to return "hundred" (the last entry)."""
    with pytest.raises(ValueError, match=r"outside the (target )?vocabulary \[0, 32\)"):
        decode_target(ids)


def test_model_refuses_token_ids_outside_its_vocabularies(model):
    src, tgt_in, _ = make_batch([3, 58])
    with pytest.raises(ValueError, match=r"src holds token ids outside the vocabulary \[0, 11\): min 0, max 11"):
        model.encode(src.index_fill(1, torch.tensor([2]), len(SRC_VOCAB)))
    memory, src_pad = model.encode(src)
    with pytest.raises(ValueError, match=r"tgt_in holds token ids outside the vocabulary \[0, 32\): min -2"):
        model.decode(tgt_in - 2, memory, src_pad)
    with pytest.raises(TypeError, match="integer tensor of token ids, got a torch.float32"):
        model.encode(src.float())
    with pytest.raises(TypeError, match="integer token ids"):
        decode_target([1.0])
