"""Batched greedy search and beam search for autoregressive decoders (notebook 06).

Both searches work for any model through one *next-token function*; they decode a whole batch of
sources at once, one ``step_fn`` call per generated position.

The ``step_fn`` contract
------------------------
``step_fn(tokens, state) -> log_probs`` or ``-> (log_probs, new_state)``

* ``tokens``: LongTensor ``(N, t)``, the prefixes decoded so far, one row per hypothesis; column 0
  is always ``bos_id``. ``t`` grows by one per call (1, 2, ..., max_len).
* ``state``: what you passed in, with one row per hypothesis: a tensor, or a (nested) tuple / list /
  dict of tensors, each with the batch in dimension 0 (e.g. ``(memory (N, S, C), src_pad (N, S))``
  from an encoder), or None. The caller passes it with ``B`` rows (one per source); ``beam_search``
  expands each tensor to ``N = B * beam_size`` rows with ``repeat_interleave(beam_size, dim=0)``, so
  rows ``b*K ... b*K + K-1`` are the beams of source ``b``. ``greedy_search`` uses ``N = B``.
* ``log_probs``: float tensor ``(N, V)`` of *normalised* log-probabilities of the next token
  (``logits.log_softmax(-1)``; each row must log-sum-exp to 0, ``-inf`` marks impossible tokens).
  Only the last position matters: return the distribution for token ``t + 1``.
* Optional ``new_state`` (same structure, ``N`` rows): for incremental decoders (RNN hidden
  states, key/value caches). When returned, the search reorders it with
  ``index_select(0, parents)`` each time beams are re-ranked and passes it to the next call. When a
  bare tensor is returned the state is taken to be fixed per source (an encoder output) and is never
  reordered: beams of one source share it.

Both searches generate at most ``max_len`` tokens after ``<bos>``. A hypothesis is *finished* when it
emits ``eos_id``; it then stops growing (greedy pads it with ``pad_id``; beam search moves it to a
list of finished hypotheses that is kept to the end). Hypotheses still open after ``max_len`` tokens
are returned too, marked ``finished=False``.

Beam search algorithm (the same as the readable single-sequence version in notebook 06): keep up to
``beam_size`` open prefixes; each step score every one-token extension by its summed log-probability,
keep the ``beam_size`` best candidates; candidates ending in ``eos_id`` leave the beam for the
finished list, the others form the next beam. Finished and open hypotheses are finally ranked by the
length-normalised score of GNMT (Wu et al., 2016):

    score = log P(y) / lp(|y|),   lp(n) = ((5 + n) / 6) ** alpha

where ``|y|`` counts generated tokens including ``<eos>``. ``alpha = 0`` ranks by the raw
log-probability (favouring short outputs); larger ``alpha`` favours longer outputs more (at ``alpha = 1``
lp grows linearly in n, so it approaches a per-token average only for n much larger than 5). The search
stops early once no open beam can still beat the ``n_best``-th finished score (an exact bound, since
log-probabilities only fall as a prefix grows); this never changes the returned hypotheses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .checks import expect_callable, expect_positive_int
from .device import get_device

StepFn = Callable[[torch.Tensor, Any], "torch.Tensor | tuple[torch.Tensor, Any]"]


@dataclass
class SearchResult:
    """Decoded hypotheses for a batch of ``B`` sources, ``N`` per source (best first).

    Attributes:
        tokens: (B, N, L) generated ids without ``<bos>``, ``<eos>`` included when finished, then
            ``pad_id``; ``L`` is the longest length present.
        lengths: (B, N) number of generated tokens (``<eos>`` included); 0 for an empty slot.
        log_probs: (B, N) summed log-probability of the tokens; ``-inf`` for an empty slot.
        scores: (B, N) the ranking score, ``log_probs / lp(lengths)`` (equal to ``log_probs`` for greedy).
        finished: (B, N) True when the hypothesis ended with ``<eos>``.
    """

    tokens: torch.Tensor
    lengths: torch.Tensor
    log_probs: torch.Tensor
    scores: torch.Tensor
    finished: torch.Tensor

    def to_lists(self) -> list[list[list[int]]]:
        """Python lists ``[source][rank] -> token ids`` trimmed to each length (empty slots dropped)."""
        out = []
        for toks, lens, lps in zip(self.tokens.tolist(), self.lengths.tolist(), self.log_probs.tolist()):
            out.append([t[:n] for t, n, lp in zip(toks, lens, lps) if lp != -math.inf])
        return out

    def best(self) -> list[list[int]]:
        """The top hypothesis of every source as a list of token ids."""
        return [hyps[0] if hyps else [] for hyps in self.to_lists()]


def _penalty_table(longest: int, alpha: float, dtype: torch.dtype, device: torch.device | str | None) -> torch.Tensor:
    """(longest + 1,) GNMT penalties for lengths 0..longest, computed as Python floats (double precision on the
    host) and stored as ``dtype`` on ``device``: no float64 tensor on the device (Apple's MPS has none)."""
    return torch.tensor([((5 + n) / 6) ** alpha for n in range(longest + 1)], dtype=dtype, device=device)


def length_penalty(lengths: torch.Tensor | int, alpha: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """GNMT length penalty ``lp(n) = ((5 + n) / 6) ** alpha`` (Wu et al., 2016); divide a log-probability by it.

    Args:
        lengths: an int or an integer tensor of lengths >= 0 (any shape).
        alpha: the length-normalisation strength (0 gives 1 for every length).
        dtype: the result's dtype; the values are computed in double precision on the host, then rounded.

    Returns:
        A ``dtype`` tensor shaped like ``lengths``, on its device.

    Raises:
        TypeError: lengths that are not integers, or a ``dtype`` that is not floating point.
        ValueError: a negative length, or ``alpha`` that is not a finite number >= 0.
    """
    _check_alpha(alpha)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype such as torch.float32, got {dtype}")
    lengths = torch.as_tensor(lengths)
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must be integers, got {lengths.dtype}")
    if lengths.numel() and int(lengths.min()) < 0:
        raise ValueError(f"lengths must be >= 0, got {int(lengths.min())}")
    longest = int(lengths.max()) if lengths.numel() else 0
    return _penalty_table(longest, alpha, dtype, lengths.device)[lengths]


# ----------------------------------------------------------------------------- helpers
def _map_state(state: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Apply ``fn`` to every tensor in a (nested) tuple / list / dict state."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return fn(state)
    if isinstance(state, tuple):
        return tuple(_map_state(s, fn) for s in state)
    if isinstance(state, list):
        return [_map_state(s, fn) for s in state]
    if isinstance(state, dict):
        return {k: _map_state(v, fn) for k, v in state.items()}
    raise TypeError(
        f"state must be None, a tensor, or a tuple/list/dict of tensors (batch in dim 0), got {type(state).__name__}"
    )


def _state_tensors(state: Any) -> list[torch.Tensor]:
    found: list[torch.Tensor] = []
    _map_state(state, lambda t: found.append(t) or t)
    return found


def _resolve_batch(state: Any, batch_size: int | None, device: torch.device | str | None) -> tuple[int, torch.device]:
    tensors = _state_tensors(state)
    if batch_size is not None:
        expect_positive_int(batch_size, "batch_size")
    if tensors:
        sizes = {t.shape[0] if t.dim() > 0 else None for t in tensors}
        if len(sizes) != 1 or None in sizes:
            raise ValueError(
                f"every tensor in state must have the batch in dimension 0 with the same size; got first "
                f"dimensions {sorted(str(s) for s in sizes)}"
            )
        size = sizes.pop()
        if batch_size is not None and batch_size != size:
            raise ValueError(f"batch_size={batch_size} but the state tensors have {size} rows")
        batch_size = size
        if device is None:
            device = tensors[0].device
    if batch_size is None:
        raise ValueError("pass batch_size= when state holds no tensors (e.g. an unconditional language model)")
    expect_positive_int(batch_size, "batch size")
    return batch_size, get_device(device) if device is not None else torch.device("cpu")


def _check_id_types(**ids: int) -> None:
    """Before the first step: each special id must be an int (its range is checked once V is known)."""
    for name, value in ids.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int token id, got {value!r} ({type(value).__name__})")


def _check_ids(vocab_size: int, **ids: int) -> None:
    for name, value in ids.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < vocab_size:
            raise ValueError(
                f"{name} must be an int in [0, {vocab_size}) for a vocabulary of {vocab_size}, got {value!r}"
            )


def _call_step(
    step_fn: StepFn, tokens: torch.Tensor, state: Any, vocab_size: int | None
) -> tuple[torch.Tensor, Any, bool]:
    """Call ``step_fn`` and validate its answer; returns (log_probs, state, stateful)."""
    out = step_fn(tokens, state)
    stateful = isinstance(out, tuple)
    if stateful:
        if len(out) != 2:
            raise TypeError(
                f"step_fn must return log_probs or (log_probs, new_state); got a tuple of length {len(out)}"
            )
        log_probs, state = out
    else:
        log_probs = out
    if not isinstance(log_probs, torch.Tensor) or not log_probs.is_floating_point():
        raise TypeError(
            f"step_fn must return a float tensor of log-probabilities, got {type(log_probs).__name__}"
            + (f" of dtype {log_probs.dtype}" if isinstance(log_probs, torch.Tensor) else "")
        )
    rows = tokens.shape[0]
    if log_probs.dim() != 2 or log_probs.shape[0] != rows:
        raise ValueError(
            f"step_fn was given tokens of shape {tuple(tokens.shape)} and must return log-probabilities of shape "
            f"(N, V) = ({rows}, V) for the next token only; got shape {tuple(log_probs.shape)}"
        )
    if log_probs.device != tokens.device:
        raise ValueError(
            f"step_fn returned log-probabilities on {log_probs.device} but the search keeps its tokens on "
            f"{tokens.device}: pass device= (the model's device) to the search"
        )
    if vocab_size is not None and log_probs.shape[1] != vocab_size:
        raise ValueError(
            f"step_fn returned {log_probs.shape[1]} vocabulary entries, earlier calls returned {vocab_size}"
        )
    tolerance = 1e-3
    if log_probs.dtype in (torch.float16, torch.bfloat16):
        tolerance = 16 * torch.finfo(log_probs.dtype).eps  # rounding each entry to 8-11 bits moves the sum
        log_probs = log_probs.float()  # sum the scores in float32
    total = log_probs.detach().logsumexp(dim=-1)
    if not torch.allclose(total, torch.zeros_like(total), atol=tolerance):
        worst = total.abs().nan_to_num(math.inf).max().item()
        raise ValueError(
            "step_fn must return normalised log-probabilities (e.g. logits.log_softmax(-1)): each row must "
            f"log-sum-exp to 0, but one is off by {worst:.3g}"
        )
    return log_probs, state, stateful


def _check_alpha(alpha: float) -> None:
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not alpha >= 0 or math.isinf(alpha):
        raise ValueError(f"alpha (length-normalisation strength) must be a finite number >= 0, got {alpha!r}")


def _check_common(beam_size: int, max_len: int, alpha: float) -> None:
    expect_positive_int(beam_size, "beam_size")
    expect_positive_int(max_len, "max_len")
    _check_alpha(alpha)


# ----------------------------------------------------------------------------- greedy
@torch.no_grad()
def greedy_search(
    step_fn: StepFn,
    state: Any,
    *,
    bos_id: int,
    eos_id: int,
    max_len: int,
    pad_id: int = 0,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
) -> SearchResult:
    """Pick the most probable next token at every step, for ``B`` sources at once.

    Args:
        step_fn: the next-token function (see the module docstring), called with ``N = B`` rows.
        state: per-source state with the batch in dimension 0, or None (then give ``batch_size``).
        bos_id, eos_id, pad_id: special token ids; finished rows are padded with ``pad_id``.
        max_len: the most tokens generated after ``<bos>`` (``<eos>`` included).
        batch_size: needed only when ``state`` has no tensors.
        device: where the token tensors live; default: the device of the state tensors, else CPU.

    Returns:
        A ``SearchResult`` with ``N = 1`` hypothesis per source.
    """
    expect_callable(step_fn, "step_fn")
    expect_positive_int(max_len, "max_len")
    _check_id_types(bos_id=bos_id, eos_id=eos_id, pad_id=pad_id)
    b, device = _resolve_batch(state, batch_size, device)
    tokens = torch.full((b, 1), bos_id, dtype=torch.long, device=device)  # (B, 1)
    done = torch.zeros(b, dtype=torch.bool, device=device)
    lengths = torch.zeros(b, dtype=torch.long, device=device)
    total = None
    vocab = None
    for _ in range(max_len):
        log_probs, new_state, stateful = _call_step(step_fn, tokens, state, vocab)  # (B, V)
        if vocab is None:
            vocab = log_probs.shape[1]
            _check_ids(vocab, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id)
            total = torch.zeros(b, dtype=log_probs.dtype, device=device)
        if stateful:
            state = new_state
        best_lp, best = log_probs.max(dim=-1)  # (B,), (B,)
        nxt = torch.where(done, torch.full_like(best, pad_id), best)  # finished rows only get padding
        total = total + torch.where(done, torch.zeros_like(best_lp), best_lp)
        lengths = lengths + (~done).long()
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)  # (B, t + 1)
        done = done | (best == eos_id)
        if bool(done.all()):
            break
    gen = tokens[:, 1:]
    return SearchResult(
        tokens=gen[:, None, :],
        lengths=lengths[:, None],
        log_probs=total[:, None],
        scores=total[:, None].clone(),
        finished=done[:, None],
    )


# ----------------------------------------------------------------------------- beam search
@torch.no_grad()
def beam_search(
    step_fn: StepFn,
    state: Any,
    *,
    bos_id: int,
    eos_id: int,
    max_len: int,
    beam_size: int = 4,
    n_best: int = 1,
    alpha: float = 0.0,
    pad_id: int = 0,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
) -> SearchResult:
    """Beam search for ``B`` sources at once, vectorised over sources and beams.

    Args:
        step_fn: the next-token function (see the module docstring), called with ``N = B * beam_size`` rows.
        state: per-source state with ``B`` rows in dimension 0, or None (then give ``batch_size``).
        bos_id, eos_id, pad_id: special token ids.
        max_len: the most tokens generated after ``<bos>`` (``<eos>`` included).
        beam_size: open prefixes kept per source (``K``); 1 gives greedy search.
        n_best: how many hypotheses to return per source, best first (``1 <= n_best <= beam_size``);
            slots that no hypothesis reached are left empty (length 0, score ``-inf``).
        alpha: GNMT length-normalisation strength (0 = raw log-probability).
        batch_size, device: as for ``greedy_search``.

    Returns:
        A ``SearchResult`` with ``N = n_best`` hypotheses per source, sorted by ``scores``.

    Raises:
        ValueError: ``n_best`` outside ``1 .. beam_size``, a size that is not positive, or a ``step_fn`` that
            returns log-probabilities of the wrong shape.
        TypeError: arguments of the wrong type (for example a float ``beam_size``).
    """
    expect_callable(step_fn, "step_fn")
    _check_common(beam_size, max_len, alpha)
    _check_id_types(bos_id=bos_id, eos_id=eos_id, pad_id=pad_id)
    expect_positive_int(n_best, "n_best")
    if n_best > beam_size:
        raise ValueError(f"n_best ({n_best}) cannot exceed beam_size ({beam_size})")
    b, device = _resolve_batch(state, batch_size, device)
    k = beam_size
    state = _map_state(state, lambda t: t.repeat_interleave(k, dim=0))  # (B*K, ...): beams of a source adjacent
    tokens = torch.full((b * k, 1), bos_id, dtype=torch.long, device=device)  # (B*K, 1)
    offsets = torch.arange(b, device=device)[:, None] * k  # (B, 1): first row of each source
    capacity = k * (max_len + 1)  # at most K finish per step, plus K still open at the end
    lp_max = ((5 + max_len) / 6) ** alpha  # lp(max_len), a Python float
    vocab = beam_lp = None
    for step in range(max_len):
        log_probs, new_state, stateful = _call_step(step_fn, tokens, state, vocab)  # (B*K, V)
        if vocab is None:  # first step: now we know V and the dtype
            vocab, dtype = log_probs.shape[1], log_probs.dtype
            _check_ids(vocab, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id)
            # Only beam 0 is live at the start, so the first step does not pick K copies of one token.
            beam_lp = torch.full((b, k), -math.inf, dtype=dtype, device=device)
            beam_lp[:, 0] = 0.0
            fin_tokens = torch.full((b, capacity, max_len), pad_id, dtype=torch.long, device=device)
            fin_lp = torch.full((b, capacity), -math.inf, dtype=dtype, device=device)
            fin_len = torch.zeros((b, capacity), dtype=torch.long, device=device)
            fin_done = torch.zeros((b, capacity), dtype=torch.bool, device=device)
            fin_count = torch.zeros(b, dtype=torch.long, device=device)
            lp = _penalty_table(max_len, alpha, dtype, device)  # (max_len + 1,): lp(n) for every length
        t = step + 1  # tokens generated once this step is done
        cand = beam_lp[:, :, None] + log_probs.view(b, k, vocab)  # (B, K, V): score of every extension
        top_lp, top_idx = cand.view(b, k * vocab).topk(k, dim=1)  # (B, K), best first
        parent, tok = top_idx // vocab, top_idx % vocab  # (B, K) each
        rows = (offsets + parent).view(-1)  # (B*K,) flat index of each candidate's parent beam
        tokens = torch.cat([tokens[rows], tok.view(-1, 1)], dim=1)  # (B*K, t + 1)
        if stateful:
            state = _map_state(new_state, lambda s, rows=rows: s.index_select(0, rows))
        possible = top_lp > -math.inf
        ended = possible & (tok == eos_id)  # (B, K): these leave the beam for the finished list
        if bool(ended.any()):
            src_i, beam_i = ended.nonzero(as_tuple=True)
            slot = fin_count[src_i] + (ended.long().cumsum(dim=1) - 1)[src_i, beam_i]
            fin_tokens[src_i, slot, :t] = tokens.view(b, k, t + 1)[src_i, beam_i, 1:]
            fin_lp[src_i, slot] = top_lp[src_i, beam_i]
            fin_len[src_i, slot] = t
            fin_done[src_i, slot] = True
            fin_count = fin_count + ended.sum(dim=1)
        beam_lp = top_lp.masked_fill(~possible | ended, -math.inf)  # (B, K) open beams
        # Exact early stop: an open prefix with log-prob p can at best reach score p / lp(max_len).
        kth_best = (fin_lp / lp[fin_len]).topk(n_best, dim=1).values[:, -1]  # (B,)
        hopeless = kth_best >= beam_lp.max(dim=1).values / lp_max
        beam_lp = beam_lp.masked_fill(hopeless[:, None], -math.inf)
        if not bool((beam_lp > -math.inf).any()):
            break
    # Hypotheses still open after max_len tokens are candidates too (unfinished).
    still_open = beam_lp > -math.inf  # all False unless the loop ran to max_len
    if bool(still_open.any()):
        src_i, beam_i = still_open.nonzero(as_tuple=True)
        slot = fin_count[src_i] + (still_open.long().cumsum(dim=1) - 1)[src_i, beam_i]
        fin_tokens[src_i, slot, :max_len] = tokens.view(b, k, -1)[src_i, beam_i, 1:]
        fin_lp[src_i, slot] = beam_lp[src_i, beam_i]
        fin_len[src_i, slot] = max_len
    scores = fin_lp / lp[fin_len]  # (B, capacity)
    best_scores, order = scores.topk(n_best, dim=1)  # (B, n_best)
    lengths = fin_len.gather(1, order)
    width = max(int(lengths.max().item()), 1)
    picked = fin_tokens.gather(1, order[:, :, None].expand(-1, -1, max_len))[:, :, :width]
    return SearchResult(
        tokens=picked,
        lengths=lengths,
        log_probs=fin_lp.gather(1, order),
        scores=best_scores,
        finished=fin_done.gather(1, order),
    )
