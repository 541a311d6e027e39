"""A key/value cache for incremental decoding with a causal (decoder-only) Transformer, as in notebook 06b.

Generating token t+1 needs, in every attention layer, the keys and values of all positions 0..t. Under a
causal mask those never change once computed (position i never sees a later token), so a decoder can keep
them and, at each step, compute the query, key and value of the *new* position only:

    step t without a cache: project t tokens, attend t queries over t keys   ~ t² · d multiply-adds
    step t with a cache:    project 1 token,  attend 1 query  over t keys    ~ t · d multiply-adds

The price is memory: every layer keeps a key and a value of size d (= heads × head_dim) per position and
sequence, 2 · T · d numbers per layer (``kv_cache_bytes``).

Notebook 06b builds the simplest cache, one ``torch.cat`` per step, and shows it equals full recomputation.
``KVCache`` here is the same idea with buffers allocated once for ``max_len`` positions, so a step writes the
new keys and values in place instead of copying everything stored so far (the ``torch.cat`` cache copies
2 · t · d numbers per layer at step t). Both have the same interface, ``append(layer, k, v) -> (keys, values)``,
and ``benchmarks/kv_cache.py`` times them against recomputation.
"""

from __future__ import annotations

import torch

from .checks import expect_int, expect_positive_int, expect_tensor


def kv_cache_bytes(
    num_layers: int, length: int, d_model: int, batch_size: int = 1, dtype: torch.dtype = torch.float32
) -> int:
    """Bytes a key/value cache holds: 2 (keys and values) × layers × batch × positions × d_model × element size.

    ``d_model`` is the width of the keys (heads × head_dim). Example: a model with 32 layers and d_model 4096
    (the size of LLaMA-2 7B) at 4096 positions in float16 holds 2 · 32 · 4096 · 4096 · 2 bytes = 2 GiB per
    sequence.
    """
    for value, name in (
        (num_layers, "num_layers"),
        (length, "length"),
        (d_model, "d_model"),
        (batch_size, "batch_size"),
    ):
        expect_positive_int(value, name)
    return 2 * num_layers * batch_size * length * d_model * torch.empty((), dtype=dtype).element_size()


class KVCache:
    """Preallocated keys and values of every attention layer, for up to ``max_len`` positions.

    Args:
        num_layers: attention layers of the model (one key buffer and one value buffer each).
        batch_size, num_heads, head_dim: the shape of the keys, ``(batch_size, num_heads, t, head_dim)``.
        max_len: the most positions the cache can hold (prompt + generated tokens).
        dtype, device: of the buffers (those of the model's keys and values).

    The model calls ``append(layer, k, v)`` once per layer and forward pass with the new positions' keys and
    values; it gets back *views* of everything the layer has stored, ``(B, H, length + t, head_dim)``.
    ``length`` is the number of positions every layer holds: read it before a forward pass, it is the
    position of the first new token.

    Raises (from ``append``):
        TypeError: a layer index that is not an integer, or keys/values that are not tensors.
        ValueError: keys or values of the wrong shape, dtype or device, or more positions than ``max_len``.
        IndexError: a layer index outside ``0 .. num_layers - 1``.
    """

    def __init__(
        self,
        num_layers: int,
        batch_size: int,
        num_heads: int,
        head_dim: int,
        max_len: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        for value, name in (
            (num_layers, "num_layers"),
            (batch_size, "batch_size"),
            (num_heads, "num_heads"),
            (head_dim, "head_dim"),
            (max_len, "max_len"),
        ):
            expect_positive_int(value, name)
        self.max_len = max_len
        shape = (num_layers, batch_size, num_heads, max_len, head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)  # (L, B, H, max_len, hd)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self.lengths = [0] * num_layers  # positions stored so far, per layer

    @property
    def num_layers(self) -> int:
        """Attention layers the cache holds keys and values for."""
        return len(self.lengths)

    @property
    def length(self) -> int:
        """Positions stored in *every* layer (during a forward pass, early layers are one step ahead)."""
        return min(self.lengths)

    @property
    def nbytes(self) -> int:
        """Bytes of the two buffers (allocated for ``max_len`` positions whether used or not)."""
        return self.keys.nbytes + self.values.nbytes

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the keys and values ``(B, H, t, head_dim)`` of ``t`` new positions of ``layer``; return all of
        that layer's keys and values so far, ``(B, H, length + t, head_dim)`` each (views, no copy)."""
        layer = expect_int(layer, "layer", minimum=None)
        if not 0 <= layer < self.num_layers:
            raise IndexError(f"layer {layer} is outside this cache's layers 0..{self.num_layers - 1}")
        expect_tensor(k, "k"), expect_tensor(v, "v")
        _, b, h, _, hd = self.keys.shape
        if k.dim() != 4 or k.shape[:2] != (b, h) or k.shape[3] != hd or v.shape != k.shape:
            raise ValueError(
                f"k and v must both be (B, H, t, head_dim) = ({b}, {h}, t, {hd}); got "
                f"{tuple(k.shape)} and {tuple(v.shape)}"
            )
        if k.dtype != self.keys.dtype or v.dtype != self.keys.dtype or k.device != self.keys.device:
            raise ValueError(
                f"k and v must be {self.keys.dtype} on {self.keys.device}, as the cache's buffers; got "
                f"{k.dtype}/{v.dtype} on {k.device}: create the KVCache with the model's dtype= and device="
            )
        start, t = self.lengths[layer], k.shape[2]
        if start + t > self.max_len:
            raise ValueError(
                f"layer {layer} holds {start} positions; {t} more exceed max_len={self.max_len}: "
                "create the KVCache with a larger max_len (prompt length + new tokens)"
            )
        self.keys[layer, :, :, start : start + t] = k
        self.values[layer, :, :, start : start + t] = v
        self.lengths[layer] = start + t
        return self.keys[layer, :, :, : start + t], self.values[layer, :, :, : start + t]

    def reset(self) -> None:
        """Forget every stored position (the buffers stay allocated, ready for a new sequence)."""
        self.lengths = [0] * self.num_layers

    def __repr__(self) -> str:
        _, b, h, _, hd = self.keys.shape
        return (
            f"KVCache(layers={self.num_layers}, batch={b}, heads={h}, head_dim={hd}, length={self.length}, "
            f"max_len={self.max_len}, {self.nbytes / 2**20:.1f} MiB)"
        )


__all__ = ["KVCache", "kv_cache_bytes"]
