"""The sequence-to-sequence task of notebook 06: numbers 0-999 as digits -> English words.

    342  ->  source tokens  "3 4 2"                       (digits, 1 to 3 of them)
         ->  target tokens  "three hundred forty two <eos>" (1 to 4 words, then EOS)

The output length varies with the input (``7`` has one word, ``777`` four), so the decoder must
learn *when to stop* by predicting ``<eos>``. The module holds the task's data and model: the
vocabularies, batching with padding for teacher forcing, a seeded train/validation split, a loader of
shuffled batches, a small encoder-decoder Transformer built from ``torch.nn`` layers and the ``step_fn``
adaptor that ``course_utils.decoding`` calls. How the model is *trained* (teacher forcing, scheduled
sampling, the training step given to ``course_utils.train.fit``) is taught in notebook 06 itself.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .attention import causal_mask, sinusoidal_positional_encoding
from .checks import expect_bool, expect_int, expect_number, expect_positive_int, expect_shape
from .device import get_device, model_device

# ----------------------------------------------------------------------------- vocabularies
ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
SPECIALS = ["<pad>", "<bos>", "<eos>"]
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2

TGT_VOCAB: list[str] = SPECIALS + ONES + TENS + ["hundred"]  # 32 tokens
SRC_VOCAB: list[str] = ["<pad>"] + [str(d) for d in range(10)]  # 11 tokens; digit d has id d + 1
TGT_INDEX = {word: i for i, word in enumerate(TGT_VOCAB)}
MAX_NUMBER = 999
MAX_SRC_LEN = 3  # "999"
MAX_TGT_LEN = 5  # "seven hundred seventy seven <eos>"


def _number(n: object) -> int:
    """``n`` as a Python int in [0, 999]; integer-likes (NumPy integers, 0-d integer tensors) count."""
    if isinstance(n, (bool, np.bool_, str, bytes)):
        raise TypeError(f"n must be an int, got {n!r} ({type(n).__name__})")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"n must be an int, got {n!r:.40} ({type(n).__name__})") from None
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"n must be in [0, {MAX_NUMBER}], got {n}")
    return n


def number_to_words(n: int) -> list[str]:
    """English words for 0 <= n <= 999, without "and" or hyphens: 342 -> three hundred forty two."""
    n = _number(n)
    if n < 20:
        return [ONES[n]]
    if n < 100:
        return [TENS[n // 10 - 2]] + ([ONES[n % 10]] if n % 10 else [])
    return [ONES[n // 100], "hundred"] + (number_to_words(n % 100) if n % 100 else [])


def encode_source(n: int) -> list[int]:
    """Digit token ids of ``n`` (no padding): 342 -> [4, 5, 3]."""
    n = _number(n)
    return [int(d) + 1 for d in str(n)]


def encode_target(n: int) -> list[int]:
    """Word token ids of ``n`` followed by ``<eos>`` (no ``<bos>``, no padding)."""
    n = _number(n)
    return [TGT_INDEX[w] for w in number_to_words(n)] + [EOS_ID]


def check_token_ids(ids: torch.Tensor, vocab_size: int, name: str) -> torch.Tensor:
    """Raise unless ``ids`` is an integer tensor of ids in ``[0, vocab_size)``; return it.

    ``nn.Embedding`` would fail deep inside on a bad id (or, for a negative one on some devices, read garbage).
    """
    vocab_size = expect_positive_int(vocab_size, "vocab_size")
    if not isinstance(ids, torch.Tensor) or ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        got = f"a {ids.dtype} tensor" if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise TypeError(f"{name} must be an integer tensor of token ids, got {got}")
    if ids.numel() and bool(((ids < 0) | (ids >= vocab_size)).any()):
        raise ValueError(
            f"{name} holds token ids outside the vocabulary [0, {vocab_size}): "
            f"min {int(ids.min())}, max {int(ids.max())}"
        )
    return ids


def decode_target(ids: Sequence[int] | torch.Tensor, strip: bool = True) -> str:
    """Words for target ids; with ``strip`` stop at the first ``<eos>`` and drop ``<bos>``/``<pad>``.

    Raises:
        ValueError: an id outside ``[0, len(TGT_VOCAB))`` (a negative id would otherwise index from the end).
        TypeError: ids that are not integers, or a tensor that is not 1-D.
    """
    strip = expect_bool(strip, "strip")
    if isinstance(ids, torch.Tensor):
        if ids.dim() != 1:
            raise TypeError(f"decode_target takes one sequence: a 1-D tensor of ids, got shape {tuple(ids.shape)}")
        ids = check_token_ids(ids, len(TGT_VOCAB), "ids").tolist()
    if isinstance(ids, (str, bytes)) or not hasattr(type(ids), "__iter__"):
        raise TypeError(f"ids must be a sequence of token ids (ints), got {ids!r:.40} ({type(ids).__name__})")
    words = []
    for i in ids:
        try:
            if isinstance(i, (bool, np.bool_)):
                raise TypeError
            i = operator.index(i)  # NumPy integers count
        except TypeError:
            raise TypeError(f"decode_target takes integer token ids, got {i!r} ({type(i).__name__})") from None
        if not 0 <= i < len(TGT_VOCAB):
            raise ValueError(f"token id {i} is outside the target vocabulary [0, {len(TGT_VOCAB)})")
        if strip and i == EOS_ID:
            break
        if strip and i in (PAD_ID, BOS_ID):
            continue
        words.append(TGT_VOCAB[i])
    return " ".join(words)


def make_batch(
    numbers: Sequence[int], device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded tensors for a list of numbers, ready for teacher forcing.

    Returns:
        src (B, 3): digit ids, right-aligned like numbers in a column (units last), left-padded with ``PAD_ID``.
        tgt_in (B, 5): ``<bos> w1 ... wn`` -- what the decoder reads (the reference shifted right).
        tgt_out (B, 5): ``w1 ... wn <eos>`` -- what it must predict at each position; ``PAD_ID``
            marks positions the loss ignores.

    Raises:
        TypeError: ``numbers`` is not a sequence of integers.
        ValueError: no numbers, or one outside [0, 999].
    """
    _check_numbers(numbers)
    numbers = [_number(n) for n in numbers]
    if device is not None:
        device = get_device(device)
    b = len(numbers)
    src = torch.full((b, MAX_SRC_LEN), PAD_ID, dtype=torch.long)
    tgt_in = torch.full((b, MAX_TGT_LEN), PAD_ID, dtype=torch.long)
    tgt_out = torch.full((b, MAX_TGT_LEN), PAD_ID, dtype=torch.long)
    for row, n in enumerate(numbers):
        s, t = encode_source(n), encode_target(n)
        src[row, MAX_SRC_LEN - len(s) :] = torch.tensor(s)  # right-aligned: a column = a place value
        tgt_out[row, : len(t)] = torch.tensor(t)
        tgt_in[row, : len(t)] = torch.tensor([BOS_ID] + t[:-1])  # shift right by one
    return src.to(device), tgt_in.to(device), tgt_out.to(device)


def _check_numbers(numbers: object) -> None:
    if isinstance(numbers, (str, bytes)) or not hasattr(type(numbers), "__len__"):
        raise TypeError(f"numbers must be a sequence of numbers 0-999, got {numbers!r:.40} ({type(numbers).__name__})")
    if len(numbers) == 0:
        raise ValueError("numbers is empty: pass at least one number 0-999")


ALWAYS_TRAIN = 20  # 0..19 have irregular names, each seen only once as a whole number: always train on them


def split_numbers(n_val: int = 200, seed: int = 0) -> tuple[list[int], list[int]]:
    """A seeded random split of 0..999 into sorted (train, validation) lists.

    The validation numbers are drawn from 20..999; 0..19 always go to training, since their words
    ("seven", "fifteen") cannot be inferred from any other example.

    Raises:
        ValueError: ``n_val`` outside ``1 .. 979`` (validation draws from the 980 numbers 20..999) or a negative
            ``seed``.
        TypeError: arguments that are not integers.
    """
    expect_positive_int(n_val, "n_val")
    seed = expect_int(seed, "seed")
    pool = MAX_NUMBER + 1 - ALWAYS_TRAIN
    if n_val >= pool:
        raise ValueError(f"n_val must be below {pool} to leave training numbers, got {n_val}")
    perm = (torch.randperm(pool, generator=torch.Generator().manual_seed(seed)) + ALWAYS_TRAIN).tolist()
    return sorted(list(range(ALWAYS_TRAIN)) + perm[n_val:]), sorted(perm[:n_val])


class NumberBatches:
    """Batches of ``make_batch(numbers)`` tensors, in a new random order every pass: a DataLoader for this task.

    Each pass draws the order with ``torch.randperm(len(numbers), generator=self.generator)`` and cuts it
    into batches of ``batch_size`` (the last one smaller). ``generator`` is seeded, and ``fit`` saves its
    state in checkpoints, so a resumed run sees the same batches. Batches are CPU tensors; ``fit`` moves
    them to the device.

    Args:
        numbers: the numbers 0-999 to serve.
        batch_size: numbers per batch.
        shuffle: a new random order every pass (False: the given order, e.g. for validation).
        seed: seeds ``generator``.

    Yields:
        ``(src (B, 3), tgt_in (B, 5), tgt_out (B, 5))`` as ``make_batch`` returns them.
    """

    def __init__(self, numbers: Sequence[int], batch_size: int = 64, *, shuffle: bool = True, seed: int = 0) -> None:
        self.batch_size = expect_positive_int(batch_size, "batch_size")
        self.shuffle = expect_bool(shuffle, "shuffle")
        seed = expect_int(seed, "seed")
        _check_numbers(numbers)
        self.numbers = list(numbers)
        self.tensors = make_batch(self.numbers)  # every number once; each batch is a row selection
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.numbers) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        n = len(self.numbers)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for rows in order.split(self.batch_size):
            yield tuple(t[rows] for t in self.tensors)


# ----------------------------------------------------------------------------- the model
class Seq2SeqTransformer(nn.Module):
    """A small encoder-decoder Transformer from ``torch.nn`` layers (pre-norm, batch_first).

    ``encode(src)`` runs once per source; ``decode(tgt_in, memory, src_pad)`` returns next-token
    logits for every decoder position under a causal mask, so teacher forcing trains all positions
    in one pass while generation calls it once per new token.
    """

    def __init__(
        self,
        src_vocab_size: int = len(SRC_VOCAB),
        tgt_vocab_size: int = len(TGT_VOCAB),
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        dim_feedforward: int = 256,
        dropout: float = 0.0,
        max_len: int = 16,
    ) -> None:
        super().__init__()
        src_vocab_size = expect_positive_int(src_vocab_size, "src_vocab_size")
        tgt_vocab_size = expect_positive_int(tgt_vocab_size, "tgt_vocab_size")
        if tgt_vocab_size < len(SPECIALS):
            raise ValueError(
                f"tgt_vocab_size must be at least {len(SPECIALS)} (<pad>, <bos>, <eos>), got {tgt_vocab_size}"
            )
        d_model, num_heads = expect_positive_int(d_model, "d_model"), expect_positive_int(num_heads, "num_heads")
        if d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        for value, name in ((num_layers, "num_layers"), (dim_feedforward, "dim_feedforward"), (max_len, "max_len")):
            expect_positive_int(value, name)
        if not 0 <= expect_number(dropout, "dropout") < 1:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout}")
        self.d_model, self.max_len = d_model, max_len
        self.src_embed = nn.Embedding(src_vocab_size, d_model, padding_idx=PAD_ID)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model, padding_idx=PAD_ID)
        self.register_buffer("pos", sinusoidal_positional_encoding(max_len, d_model), persistent=False)
        enc_layer = nn.TransformerEncoderLayer(
            d_model, num_heads, dim_feedforward, dropout, batch_first=True, norm_first=True
        )
        dec_layer = nn.TransformerDecoderLayer(
            d_model, num_heads, dim_feedforward, dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(
            enc_layer, num_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.decoder = nn.TransformerDecoder(dec_layer, num_layers, norm=nn.LayerNorm(d_model))
        self.out = nn.Linear(d_model, tgt_vocab_size)

    def embed(self, table: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings scaled by sqrt(d_model) plus sinusoidal positions: (B, T) -> (B, T, C)."""
        t = expect_shape(ids, ("B", "T"), "ids")["T"]
        if t > self.max_len:
            raise ValueError(f"sequence length {t} exceeds the model's max_len={self.max_len}")
        return table(ids) * self.d_model**0.5 + self.pos[:t]  # (B, T, C)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """src (B, S) -> memory (B, S, C) and the source padding mask (B, S), True = padding."""
        expect_shape(src, ("B", "S"), "src")
        check_token_ids(src, self.src_embed.num_embeddings, "src")
        src_pad = src == PAD_ID  # (B, S)
        memory = self.encoder(self.embed(self.src_embed, src), src_key_padding_mask=src_pad)
        return memory, src_pad

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src_pad: torch.Tensor) -> torch.Tensor:
        """tgt_in (B, T) and the encoder output -> next-token logits (B, T, V)."""
        dims = expect_shape(tgt_in, ("B", "T"), "tgt_in")
        check_token_ids(tgt_in, self.tgt_embed.num_embeddings, "tgt_in")
        s = expect_shape(memory, (dims["B"], "S", self.d_model), "memory")["S"]
        expect_shape(src_pad, (dims["B"], s), "src_pad")
        if src_pad.dtype != torch.bool:
            raise TypeError(
                f"src_pad must be a bool tensor (True = padding), as encode returns it; got {src_pad.dtype}"
            )
        t = dims["T"]
        # torch's convention is the opposite of course_utils.attention: True = may NOT attend.
        future = ~causal_mask(t, tgt_in.device)  # (T, T)
        h = self.decoder(
            self.embed(self.tgt_embed, tgt_in), memory, tgt_mask=future, memory_key_padding_mask=src_pad
        )  # (B, T, C)
        return self.out(h)  # (B, T, V)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, V) for every target position."""
        memory, src_pad = self.encode(src)
        return self.decode(tgt_in, memory, src_pad)


# ----------------------------------------------------------------------------- decoding adaptor
def make_step_fn(
    model: Seq2SeqTransformer,
) -> Callable[[torch.Tensor, tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """The next-token function ``course_utils.decoding`` expects, for this model.

    ``step_fn(tokens (N, t), state) -> log_probs (N, V)`` where ``state = (memory (N, S, C),
    src_pad (N, S))`` comes from ``model.encode``. The whole prefix is re-decoded each call (no key/value
    cache): targets here are at most 5 tokens long, so simplicity wins.
    """
    if not callable(getattr(model, "decode", None)):
        raise TypeError(f"model must be a Seq2SeqTransformer (or have decode), got {type(model).__name__}")

    @torch.no_grad()
    def step_fn(tokens: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        memory, src_pad = state
        return model.decode(tokens, memory, src_pad)[:, -1].log_softmax(dim=-1)  # (N, V)

    return step_fn


@torch.no_grad()
def encode_numbers(
    model: Seq2SeqTransformer, numbers: Sequence[int], device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``model.encode`` of a batch of numbers: the ``state`` the search functions take."""
    if not (isinstance(model, torch.nn.Module) and callable(getattr(model, "encode", None))):
        raise TypeError(f"model must be a Seq2SeqTransformer (or an nn.Module with encode), got {type(model).__name__}")
    model.eval()
    src, _, _ = make_batch(numbers, device=device if device is not None else model_device(model))
    return model.encode(src)


# ----------------------------------------------------------------------------- evaluation
def exact_match(predictions: Sequence[Sequence[int]], numbers: Sequence[int]) -> float:
    """Fraction of predictions equal to the reference words *and* ending in ``<eos>`` (tokens after it are ignored).

    Raises:
        ValueError: no predictions, or not one per number.
        TypeError: a prediction that is not a sequence of token ids (e.g. a string of words).
    """
    if len(predictions) != len(numbers):
        raise ValueError(f"got {len(predictions)} predictions for {len(numbers)} numbers")
    if not predictions:
        raise ValueError("no predictions to score: exact_match needs at least one")
    hits = 0
    for pred, n in zip(predictions, numbers):
        pred = pred.tolist() if isinstance(pred, torch.Tensor) else pred
        if isinstance(pred, (str, bytes)) or not hasattr(type(pred), "__iter__"):
            raise TypeError(
                f"each prediction must be a sequence of token ids (as SearchResult.best() returns), got {pred!r:.40}"
            )
        pred = list(pred)
        if EOS_ID in pred:
            pred = pred[: pred.index(EOS_ID) + 1]
        hits += pred == encode_target(n)
    return hits / max(len(numbers), 1)
