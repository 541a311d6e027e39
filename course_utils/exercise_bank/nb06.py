"""Exercise references for notebook 06 (Transformer decoder and beam search)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..exercises import exercise
from ..number_words import BOS_ID, MAX_TGT_LEN, PAD_ID, TGT_VOCAB, number_to_words


@exercise(
    "06.1",
    title="The causal mask",
    kind="transcription",
    atol=0.0,
    rtol=0.0,
    hints=(
        "Row i is query position i; which key positions j exist already when position i is written?",
        "A lower-triangular matrix of booleans; look up torch.tril.",
    ),
)
def causal_keep_mask(size: int) -> torch.Tensor:
    """(size, size) bool, True = may attend: PyTorch's own float mask (0 = allowed, -inf = blocked) turned around."""
    return nn.Transformer.generate_square_subsequent_mask(size) == 0


@exercise(
    "06.2",
    title="P(B A B <eos>)",
    kind="understanding",
    hints=(
        "The probability of a whole output is the product of its next-token probabilities (the chain rule).",
        "Three factors, each read from the row of the prefix written so far: (), then ('B',), then ('B', 'A'); "
        "after three tokens <eos> has probability 1.",
    ),
)
def path_probability(table: dict) -> float:
    """Chain rule by a loop over the prefixes of B A B (column 0 = P(A), column 1 = P(B))."""
    tokens, prob = ["B", "A", "B"], 1.0
    for i, token in enumerate(tokens):
        prob *= table[tuple(tokens[:i])]["AB".index(token)]
    return prob


@exercise(
    "06.3",
    title="How many outputs exhaustive search scores",
    kind="predict",
    atol=0.0,
    rtol=0.0,
    hints=(
        "Sort the outputs by length: how many end with <eos> after 1, 2, ... tokens, and how many are cut at max_len?",
        "An output that stops early has words in every position before its <eos>; an output cut at max_len "
        "can end with any of the four tokens.",
    ),
)
def exhaustive_count(n_words: int, max_len: int) -> int:
    """Counted by enumerating every token sequence (0 = <eos>, 1..n_words = words) and stopping at the first <eos>."""
    outputs = set()
    for seq in torch.cartesian_prod(*[torch.arange(n_words + 1)] * max_len).tolist():
        stop = seq.index(0) + 1 if 0 in seq else max_len
        outputs.add(tuple(seq[:stop]))
    return len(outputs)


@exercise(
    "06.4",
    title="Decoder input for teacher forcing",
    kind="understanding",
    atol=0.0,
    rtol=0.0,
    hints=(
        "The decoder input is the reference shifted right by one: what does it read at position 0?",
        "<eos> is something the decoder must predict, not something it reads; padding has id 0.",
    ),
)
def decoder_input(number: int) -> torch.Tensor:
    """<bos>, the word ids, then <pad> up to MAX_TGT_LEN."""
    ids = [BOS_ID] + [TGT_VOCAB.index(w) for w in number_to_words(number)]
    return torch.tensor(ids + [PAD_ID] * (MAX_TGT_LEN - len(ids)))


@exercise(
    "06.5",
    title="Beam search with one beam",
    kind="understanding",
    atol=0.0,
    rtol=0.0,
    hints=(
        "With one beam, how many prefixes survive each step, and which one?",
        "Follow the most likely next token from <bos> in the table TOY_NEXT until <eos>.",
    ),
)
def one_beam(next_probs: torch.Tensor, max_len: int) -> torch.Tensor:
    """Arg-max walk through the bigram table from <bos> (id 1) until <eos> (id 0) or max_len tokens."""
    tokens, prev = [], 1
    while len(tokens) < max_len:
        prev = int(next_probs[prev].argmax())
        tokens.append(prev)
        if prev == 0:
            break
    return torch.tensor(tokens)


@exercise(
    "06.6",
    title="GNMT score",
    kind="transcription",
    hints=(
        "The score divides the log-probability by a length penalty lp(n) that depends on alpha.",
        "lp(n) = ((5 + n) / 6) ** alpha with n the number of tokens, <eos> included.",
    ),
)
def gnmt(log_prob: float, length: int, alpha: float) -> float:
    """log P / lp(length), with lp written as exp(alpha * log((5 + n) / 6))."""
    return log_prob / float(torch.exp(alpha * torch.log(torch.tensor((5 + length) / 6, dtype=torch.float64))))


def _loss_cases():
    g = torch.Generator().manual_seed(606)
    for batch, length, vocab in ((3, 5, 7), (2, 4, 32), (4, 6, 9)):
        logits = torch.randn(batch, length, vocab, generator=g, dtype=torch.float64)
        tgt_out = torch.randint(1, vocab, (batch, length), generator=g)
        for b in range(batch):  # right-padding of different lengths, at least one real token per row
            tgt_out[b, 1 + b % (length - 1) :] = PAD_ID
        yield (logits, tgt_out), {}


@exercise(
    "06.7",
    title="Find the bug in the teacher-forcing loss",
    kind="debug",
    atol=1e-8,
    calls=lambda: _loss_cases(),
    hints=(
        "Which positions of tgt_out should count in the mean, and does this loss know which they are?",
        "Look up the ignore_index argument of F.cross_entropy; which id marks padding here?",
    ),
)
def token_loss_reference(logits: torch.Tensor, tgt_out: torch.Tensor) -> torch.Tensor:
    """Mean of -log softmax over the real positions, by a loop (padding = PAD_ID is skipped)."""
    terms = [
        -F.log_softmax(logits[b, t], dim=-1)[tgt_out[b, t]]
        for b in range(tgt_out.shape[0])
        for t in range(tgt_out.shape[1])
        if tgt_out[b, t] != PAD_ID
    ]
    return torch.stack(terms).mean()
