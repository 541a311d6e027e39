"""The sequence-to-sequence task of notebook 06: numbers 0-999 as digits -> English words.

    342  ->  source tokens  "3 4 2"                       (digits, 1 to 3 of them)
         ->  target tokens  "three hundred forty two <eos>" (1 to 4 words, then EOS)

The output length varies with the input (``7`` has one word, ``777`` four), so the decoder must
learn *when to stop* by predicting ``<eos>``. The module holds the vocabularies, batching with
padding and teacher forcing, a seeded train/validation split, a small encoder-decoder Transformer
built from ``torch.nn`` layers, its training loop (with optional scheduled sampling) and the
``step_fn`` adaptor that ``course_utils.decoding`` calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .attention import causal_mask, sinusoidal_positional_encoding
from .checks import expect_positive_int, expect_shape
from .device import get_device, model_device
from .progress import progress
from .train import History

# ----------------------------------------------------------------------------- vocabularies
ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
SPECIALS = ["<pad>", "<bos>", "<eos>"]
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2

TGT_VOCAB: list[str] = SPECIALS + ONES + TENS + ["hundred"]  # 32 tokens
SRC_VOCAB: list[str] = ["<pad>"] + [str(d) for d in range(10)]  # 11 tokens; digit d has id d + 1
TGT_INDEX = {word: i for i, word in enumerate(TGT_VOCAB)}
MAX_NUMBER = 999
MAX_SRC_LEN = 3  # "999"
MAX_TGT_LEN = 5  # "seven hundred seventy seven <eos>"


def number_to_words(n: int) -> list[str]:
    """English words for 0 <= n <= 999, without "and" or hyphens: 342 -> three hundred forty two."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"n must be in [0, {MAX_NUMBER}], got {n}")
    if n < 20:
        return [ONES[n]]
    if n < 100:
        return [TENS[n // 10 - 2]] + ([ONES[n % 10]] if n % 10 else [])
    return [ONES[n // 100], "hundred"] + (number_to_words(n % 100) if n % 100 else [])


def encode_source(n: int) -> list[int]:
    """Digit token ids of ``n`` (no padding): 342 -> [4, 5, 3]."""
    number_to_words(n)  # validates n
    return [int(d) + 1 for d in str(n)]


def encode_target(n: int) -> list[int]:
    """Word token ids of ``n`` followed by ``<eos>`` (no ``<bos>``, no padding)."""
    return [TGT_INDEX[w] for w in number_to_words(n)] + [EOS_ID]


def decode_target(ids: Sequence[int] | torch.Tensor, strip: bool = True) -> str:
    """Words for target ids; with ``strip`` stop at the first ``<eos>`` and drop ``<bos>``/``<pad>``."""
    if isinstance(ids, torch.Tensor):
        ids = ids.tolist()
    words = []
    for i in ids:
        if strip and i == EOS_ID:
            break
        if strip and i in (PAD_ID, BOS_ID):
            continue
        words.append(TGT_VOCAB[i])
    return " ".join(words)


def make_batch(numbers: Sequence[int], device: torch.device | str | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded tensors for a list of numbers, ready for teacher forcing.

    Returns:
        src (B, 3): digit ids, right-aligned like numbers in a column (units last), left-padded with ``PAD_ID``.
        tgt_in (B, 5): ``<bos> w1 ... wn`` -- what the decoder reads (the reference shifted right).
        tgt_out (B, 5): ``w1 ... wn <eos>`` -- what it must predict at each position; ``PAD_ID``
            marks positions the loss ignores.
    """
    if len(numbers) == 0:
        raise ValueError("make_batch needs at least one number")
    b = len(numbers)
    src = torch.full((b, MAX_SRC_LEN), PAD_ID, dtype=torch.long)
    tgt_in = torch.full((b, MAX_TGT_LEN), PAD_ID, dtype=torch.long)
    tgt_out = torch.full((b, MAX_TGT_LEN), PAD_ID, dtype=torch.long)
    for row, n in enumerate(numbers):
        s, t = encode_source(int(n)), encode_target(int(n))
        src[row, MAX_SRC_LEN - len(s):] = torch.tensor(s)  # right-aligned: a column = a place value
        tgt_out[row, :len(t)] = torch.tensor(t)
        tgt_in[row, :len(t)] = torch.tensor([BOS_ID] + t[:-1])  # shift right by one
    return src.to(device), tgt_in.to(device), tgt_out.to(device)


ALWAYS_TRAIN = 20  # 0..19 have irregular names, each seen only once as a whole number: always train on them


def split_numbers(n_val: int = 200, seed: int = 0) -> tuple[list[int], list[int]]:
    """A seeded random split of 0..999 into sorted (train, validation) lists.

    The validation numbers are drawn from 20..999; 0..19 always go to training, since their words
    ("seven", "fifteen") cannot be inferred from any other example.
    """
    expect_positive_int(n_val, "n_val")
    pool = MAX_NUMBER + 1 - ALWAYS_TRAIN
    if n_val >= pool:
        raise ValueError(f"n_val must be below {pool} to leave training numbers, got {n_val}")
    perm = (torch.randperm(pool, generator=torch.Generator().manual_seed(seed)) + ALWAYS_TRAIN).tolist()
    return sorted(list(range(ALWAYS_TRAIN)) + perm[n_val:]), sorted(perm[:n_val])


# ----------------------------------------------------------------------------- the model
class Seq2SeqTransformer(nn.Module):
    """A small encoder-decoder Transformer from ``torch.nn`` layers (pre-norm, batch_first).

    ``encode(src)`` runs once per source; ``decode(tgt_in, memory, src_pad)`` returns next-token
    logits for every decoder position under a causal mask, so teacher forcing trains all positions
    in one pass while generation calls it once per new token.
    """

    def __init__(self, src_vocab_size: int = len(SRC_VOCAB), tgt_vocab_size: int = len(TGT_VOCAB),
                 d_model: int = 64, num_heads: int = 4, num_layers: int = 2, dim_feedforward: int = 256,
                 dropout: float = 0.0, max_len: int = 16) -> None:
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        self.src_embed = nn.Embedding(src_vocab_size, d_model, padding_idx=PAD_ID)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model, padding_idx=PAD_ID)
        self.register_buffer("pos", sinusoidal_positional_encoding(max_len, d_model), persistent=False)
        enc_layer = nn.TransformerEncoderLayer(d_model, num_heads, dim_feedforward, dropout,
                                               batch_first=True, norm_first=True)
        dec_layer = nn.TransformerDecoderLayer(d_model, num_heads, dim_feedforward, dropout,
                                               batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(enc_layer, num_layers, norm=nn.LayerNorm(d_model),
                                             enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(dec_layer, num_layers, norm=nn.LayerNorm(d_model))
        self.out = nn.Linear(d_model, tgt_vocab_size)

    def embed(self, table: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings scaled by sqrt(d_model) plus sinusoidal positions: (B, T) -> (B, T, C)."""
        t = ids.shape[1]
        if t > self.max_len:
            raise ValueError(f"sequence length {t} exceeds the model's max_len={self.max_len}")
        return table(ids) * self.d_model**0.5 + self.pos[:t]  # (B, T, C)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """src (B, S) -> memory (B, S, C) and the source padding mask (B, S), True = padding."""
        expect_shape(src, ("B", "S"), "src")
        src_pad = src == PAD_ID  # (B, S)
        memory = self.encoder(self.embed(self.src_embed, src), src_key_padding_mask=src_pad)
        return memory, src_pad

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src_pad: torch.Tensor) -> torch.Tensor:
        """tgt_in (B, T) and the encoder output -> next-token logits (B, T, V)."""
        dims = expect_shape(tgt_in, ("B", "T"), "tgt_in")
        expect_shape(memory, (dims["B"], "S", self.d_model), "memory")
        t = dims["T"]
        # torch's convention is the opposite of course_utils.attention: True = may NOT attend.
        future = ~causal_mask(t, tgt_in.device)  # (T, T)
        h = self.decoder(self.embed(self.tgt_embed, tgt_in), memory, tgt_mask=future,
                         memory_key_padding_mask=src_pad)  # (B, T, C)
        return self.out(h)  # (B, T, V)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, V) for every target position."""
        memory, src_pad = self.encode(src)
        return self.decode(tgt_in, memory, src_pad)


# ----------------------------------------------------------------------------- decoding adaptor
def make_step_fn(model: Seq2SeqTransformer) -> Callable[[torch.Tensor, tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """The next-token function ``course_utils.decoding`` expects, for this model.

    ``step_fn(tokens (N, t), state) -> log_probs (N, V)`` where ``state = (memory (N, S, C),
    src_pad (N, S))`` comes from ``model.encode``. The whole prefix is re-decoded each call (no key/value
    cache): targets here are at most 5 tokens long, so simplicity wins.
    """
    @torch.no_grad()
    def step_fn(tokens: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        memory, src_pad = state
        return model.decode(tokens, memory, src_pad)[:, -1].log_softmax(dim=-1)  # (N, V)

    return step_fn


@torch.no_grad()
def encode_numbers(model: Seq2SeqTransformer, numbers: Sequence[int],
                   device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``model.encode`` of a batch of numbers: the ``state`` the search functions take."""
    model.eval()
    src, _, _ = make_batch(numbers, device=device if device is not None else model_device(model))
    return model.encode(src)


# ----------------------------------------------------------------------------- training
def teacher_forcing_loss(model: nn.Module, src: torch.Tensor, tgt_in: torch.Tensor,
                         tgt_out: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the non-padding target positions: one classification per token."""
    logits = model(src, tgt_in)  # (B, T, V)
    return nn.functional.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD_ID)


@torch.no_grad()
def scheduled_sampling_inputs(model: nn.Module, src: torch.Tensor, tgt_in: torch.Tensor, prob: float,
                              generator: torch.Generator | None = None, source: str = "model") -> torch.Tensor:
    """Decoder inputs where each reference token is swapped, with probability ``prob``, for another token.

    ``source="model"`` is scheduled sampling proper, in the two-pass form used with Transformers
    (Mihaylova & Liu, 2019): pass 1 runs the decoder with teacher forcing, without gradients, and takes
    its arg-max guess for every position; the caller's training step then reads the mixed sequence.
    ``source="random"`` swaps in uniformly random word tokens instead (plain input noise), which does
    not depend on how good the model already is. ``<bos>`` and padding are never replaced.
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob}")
    if source == "model":
        was_training = model.training
        model.eval()
        guesses = model(src, tgt_in).argmax(dim=-1)  # (B, T): the model's token for position t
        model.train(was_training)
        # The input at position t+1 is the token predicted at position t.
        replacement = torch.cat([tgt_in[:, :1], guesses[:, :-1]], dim=1)  # (B, T)
    elif source == "random":
        first_word = len(SPECIALS)
        replacement = torch.randint(first_word, len(TGT_VOCAB), tgt_in.shape, generator=generator).to(tgt_in.device)
    else:
        raise ValueError(f"source must be 'model' or 'random', got {source!r}")
    coin = torch.rand(tgt_in.shape, generator=generator).to(tgt_in.device) < prob  # (B, T)
    swap = coin & (tgt_in != PAD_ID) & (tgt_in != BOS_ID)
    return torch.where(swap, replacement, tgt_in)


def placeholder_inputs(batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(B, MAX_TGT_LEN) decoder inputs that are all ``<bos>``: what a non-autoregressive decoder reads."""
    return torch.full((batch_size, MAX_TGT_LEN), BOS_ID, dtype=torch.long, device=device)


@torch.no_grad()
def non_autoregressive_decode(model: Seq2SeqTransformer, numbers: Sequence[int]) -> list[list[int]]:
    """One decoder call for all positions of all numbers; each output is cut after its first ``<eos>``."""
    model.eval()
    device = model_device(model)
    src, _, _ = make_batch(numbers, device)
    guesses = model(src, placeholder_inputs(len(numbers), device)).argmax(dim=-1).tolist()  # (B, T)
    return [g[:g.index(EOS_ID) + 1] if EOS_ID in g else g for g in guesses]


def train_seq2seq(model: Seq2SeqTransformer, train_numbers: Sequence[int], *, epochs: int,
                  batch_size: int = 64, lr: float = 3e-3, weight_decay: float = 0.01,
                  device: torch.device | str | None = None, val_numbers: Sequence[int] | None = None,
                  sampling_prob: float | Callable[[int], float] = 0.0, sampling_source: str = "model",
                  non_autoregressive: bool = False, seed: int = 0, show_progress: bool = True,
                  on_epoch_end: Callable[[int, History], None] | None = None) -> History:
    """Train with teacher forcing (AdamW, cosine learning-rate decay); return the per-epoch history.

    Args:
        sampling_prob: scheduled sampling: the probability of feeding the model's own prediction
            instead of the reference token, either a constant or a function ``epoch (0-based) -> p``.
            0 is plain teacher forcing.
        sampling_source: ``"model"`` (scheduled sampling) or ``"random"`` (random-token input noise),
            see ``scheduled_sampling_inputs``.
        non_autoregressive: train a non-autoregressive decoder: it reads ``MAX_TGT_LEN`` copies of
            ``<bos>`` (see ``placeholder_inputs``) instead of the shifted reference, and must predict every
            position at once; the loss ignores positions after ``<eos>``.
        on_epoch_end: called as ``fn(epoch, history)`` (epoch counted from 1) after each epoch,
            e.g. to keep a snapshot of the weights.
        device: where to train; default: where the model's parameters are.

    History keys: ``train_loss``, ``sampling_prob`` and, with ``val_numbers``, ``val_loss`` and
    ``val_token_acc`` (teacher-forced next-token accuracy on non-padding positions).
    """
    expect_positive_int(epochs, "epochs")
    expect_positive_int(batch_size, "batch_size")
    device = model_device(model) if device is None else get_device(device)
    model.to(device)
    gen = torch.Generator().manual_seed(seed)
    numbers = torch.tensor(list(train_numbers))
    steps_per_epoch = -(-len(numbers) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch,
                                                    pct_start=0.1)
    val_batch = make_batch(val_numbers, device) if val_numbers is not None else None
    history = History()
    for epoch in progress(range(epochs), desc="epochs", disable=not show_progress):
        p = sampling_prob(epoch) if callable(sampling_prob) else float(sampling_prob)
        model.train()
        total, count = 0.0, 0
        for idx in torch.randperm(len(numbers), generator=gen).split(batch_size):
            src, tgt_in, tgt_out = make_batch(numbers[idx].tolist(), device)
            if non_autoregressive:
                tgt_in = placeholder_inputs(len(idx), device)
            elif p > 0:
                tgt_in = scheduled_sampling_inputs(model, src, tgt_in, p, generator=gen, source=sampling_source)
            loss = teacher_forcing_loss(model, src, tgt_in, tgt_out)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total, count = total + loss.item() * len(idx), count + len(idx)
        history.log(train_loss=total / count, sampling_prob=p)
        if val_batch is not None:
            model.eval()
            with torch.no_grad():
                src, tgt_in, tgt_out = val_batch
                if non_autoregressive:
                    tgt_in = placeholder_inputs(len(src), device)
                logits = model(src, tgt_in)
                keep = tgt_out != PAD_ID
                val_loss = nn.functional.cross_entropy(logits[keep], tgt_out[keep])
                val_acc = (logits.argmax(-1)[keep] == tgt_out[keep]).float().mean()
            history.log(val_loss=val_loss.item(), val_token_acc=val_acc.item())
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, history)
    model.eval()
    return history


def exact_match(predictions: Sequence[Sequence[int]], numbers: Sequence[int]) -> float:
    """Fraction of predictions equal to the reference words *and* ending in ``<eos>`` (tokens after it are ignored)."""
    if len(predictions) != len(numbers):
        raise ValueError(f"got {len(predictions)} predictions for {len(numbers)} numbers")
    hits = 0
    for pred, n in zip(predictions, numbers):
        pred = pred.tolist() if isinstance(pred, torch.Tensor) else list(pred)
        if EOS_ID in pred:
            pred = pred[:pred.index(EOS_ID) + 1]
        hits += pred == encode_target(int(n))
    return hits / max(len(numbers), 1)
