"""Scaled dot-product and multi-head attention, as built in notebook 05 and used by notebook 06."""

from __future__ import annotations

import math

import torch
from torch import nn

from .checks import expect_bool, expect_positive_int, expect_shape, expect_tensor
from .device import get_device


def _broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    """The broadcast of ``shapes`` (NumPy rules), or None if they do not broadcast.

    Plain Python: ``torch.broadcast_shapes`` imports torch's symbolic-shape machinery on first use (a second).
    """
    out: list[int] = []
    for sizes in zip(*(((1,) * (max(map(len, shapes)) - len(s)) + tuple(s)) for s in shapes)):
        big = {n for n in sizes if n != 1}
        if len(big) > 1:
            return None
        out.append(big.pop() if big else 1)
    return tuple(out)


def causal_mask(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(T, T) boolean mask, True where attention is allowed: position i sees positions <= i (default device: CPU)."""
    size = expect_positive_int(size, "causal_mask size")
    return torch.ones(size, size, dtype=torch.bool, device=get_device(device) if device is not None else None).tril()


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q kᵀ / √d) v, returning the output and the attention weights.

    Args:
        q: (..., Tq, d) queries.
        k: (..., Tk, d) keys.
        v: (..., Tk, dv) values.
        mask: boolean, broadcastable to (..., Tq, Tk); True = may attend. Rows with no True get
            zero weights (and a zero output) rather than NaN.

    Returns:
        out (..., Tq, dv) and weights (..., Tq, Tk).

    Raises:
        TypeError: not tensors, not floating point, dtypes that differ, or a mask that is not boolean.
        ValueError: shapes that do not fit (..., T, d), tensors on different devices, a mask that does not broadcast.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        expect_tensor(t, name)
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(f"q, k, v must be (..., T, d); got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the last dimension d, got {q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same length Tk, got {k.shape[-2]} and {v.shape[-2]}")
    if not (q.is_floating_point() and k.is_floating_point() and v.is_floating_point()):
        raise TypeError(f"q, k, v must be floating-point tensors, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(
            f"q, k, v must have the same dtype, got {q.dtype}, {k.dtype}, {v.dtype}: convert with .to(dtype)"
        )
    if not q.device == k.device == v.device:
        raise ValueError(
            f"q, k, v must be on the same device, got {q.device}, {k.device}, {v.device}: move them with .to(device)"
        )
    if _broadcast(q.shape[:-2], k.shape[:-2], v.shape[:-2]) is None:
        raise ValueError(
            f"the leading (batch) dimensions of q, k, v do not broadcast: {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(v.shape)}"
        )
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Tq, Tk)
    if mask is not None:
        expect_tensor(mask, "mask")
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a boolean tensor (True = may attend), got {mask.dtype}")
        if _broadcast(mask.shape, scores.shape) is None:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to the scores "
                f"(..., Tq, Tk) = {tuple(scores.shape)}"
            )
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        # A row with no allowed key is softmax(all -inf) = NaN: give it zero weights instead. Zeroing only
        # the masked entries keeps any NaN that comes from the inputs themselves visible.
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights  # (..., Tq, dv), (..., Tq, Tk)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate q/k/v/out projections.

    ``load_from_torch`` copies the weights of an ``nn.MultiheadAttention`` (batch_first, same sizes),
    so the two can be compared output for output.
    """

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        bias = expect_bool(bias, "bias")
        embed_dim = expect_positive_int(embed_dim, "embed_dim")
        num_heads = expect_positive_int(num_heads, "num_heads")
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.last_weights: torch.Tensor | None = None  # (B, H, Tq, Tk) from the latest call, for plots

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)

    def forward(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Attend from ``query`` (B, Tq, C) to ``key``/``value`` (B, Tk, C); return (B, Tq, C).

        ``mask`` is boolean, True = may attend, and 4-D: (B or 1, H or 1, Tq or 1, Tk), every axis in its
        place, e.g. ``causal_mask(T)[None, None]`` (1, 1, T, T) or key padding ``keep[:, None, None, :]``
        (B, 1, 1, Tk). A 2-D or 3-D mask is refused: a (3, 3) mask could be (Tq, Tk) or a (B, Tk) key-padding
        mask, and which one it is must not depend on whether B happens to equal Tq.

        Raises:
            ValueError: a mask that is not 4-D, or whose sizes do not fit (B, H, Tq, Tk); inputs that are not
                (B, T, C), or not on the device of the module's weights.
            TypeError: inputs whose dtype is not the weights' dtype.
        """
        dims = expect_shape(query, ("B", "Tq", self.embed_dim), "query")
        expect_shape(key, (dims["B"], "Tk", self.embed_dim), "key")
        expect_shape(value, (dims["B"], key.shape[1], self.embed_dim), "value")
        weight = self.q_proj.weight
        for name, t in (("query", query), ("key", key), ("value", value)):
            if t.dtype != weight.dtype:
                want = str(weight.dtype).removeprefix("torch.")
                raise TypeError(
                    f"{name} must be {want} like the module's weights, got {t.dtype}: convert it with "
                    f".to(torch.{want}) (or the module with .to(dtype))"
                )
            if t.device != weight.device:
                raise ValueError(
                    f"{name} is on {t.device} but the module's weights are on {weight.device}: "
                    f"move one of "
                    f"them, e.g. {name}.to('{weight.device}')"
                )
        if mask is not None:
            self._check_mask(mask, dims["B"], query.shape[1], key.shape[1])
        q, k, v = self._heads(self.q_proj(query)), self._heads(self.k_proj(key)), self._heads(self.v_proj(value))
        out, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, H, Tq, hd)
        self.last_weights = weights.detach()
        out = out.transpose(1, 2).reshape(query.shape[0], query.shape[1], self.embed_dim)  # (B, Tq, C)
        return self.out_proj(out)

    def _check_mask(self, mask: torch.Tensor, b: int, tq: int, tk: int) -> None:
        expect_tensor(mask, "mask")
        if mask.dim() != 4:
            raise ValueError(
                f"mask must be 4-D (B or 1, H or 1, Tq or 1, Tk) so that no axis is guessed; got shape "
                f"{tuple(mask.shape)}. For a (Tq, Tk) mask shared by all sequences pass mask[None, None]; for a "
                "(B, Tk) key-padding mask pass mask[:, None, None, :]; for (B, Tq, Tk) pass mask[:, None]"
            )
        expected = ((1, b), (1, self.num_heads), (1, tq), (tk,))
        if any(size not in allowed for size, allowed in zip(mask.shape, expected)):
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not fit (B or 1, H or 1, Tq or 1, Tk) = "
                f"({b} or 1, {self.num_heads} or 1, {tq} or 1, {tk})"
            )

    @torch.no_grad()
    def load_from_torch(self, mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of a same-sized ``nn.MultiheadAttention`` into this module; returns self."""
        if not isinstance(mha, nn.MultiheadAttention):
            raise TypeError(f"mha must be an nn.MultiheadAttention, got {type(mha).__name__}")
        if mha.embed_dim != self.embed_dim or mha.num_heads != self.num_heads:
            raise ValueError(
                f"size mismatch: nn.MultiheadAttention has embed_dim={mha.embed_dim}, num_heads={mha.num_heads}; "
                f"this module has {self.embed_dim}, {self.num_heads}"
            )
        if mha.in_proj_weight is None:
            raise ValueError("nn.MultiheadAttention with kdim/vdim different from embed_dim is not supported")
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("nn.MultiheadAttention with add_bias_kv or add_zero_attn is not supported")
        if (mha.in_proj_bias is None) != (self.q_proj.bias is None):
            raise ValueError(
                f"bias mismatch: nn.MultiheadAttention has bias={mha.in_proj_bias is not None}, "
                f"this module has bias={self.q_proj.bias is not None}"
            )
        wq, wk, wv = mha.in_proj_weight.chunk(3)
        for proj, w in zip((self.q_proj, self.k_proj, self.v_proj), (wq, wk, wv)):
            proj.weight.copy_(w)
        self.out_proj.weight.copy_(mha.out_proj.weight)
        if mha.in_proj_bias is not None and self.q_proj.bias is not None:
            bq, bk, bv = mha.in_proj_bias.chunk(3)
            for proj, b in zip((self.q_proj, self.k_proj, self.v_proj), (bq, bk, bv)):
                proj.bias.copy_(b)
            self.out_proj.bias.copy_(mha.out_proj.bias)
        return self


def sinusoidal_positional_encoding(length: int, dim: int) -> torch.Tensor:
    """(length, dim) sinusoidal position codes: sin on even and cos on odd features."""
    length, dim = expect_positive_int(length, "length"), expect_positive_int(dim, "dim")
    if dim < 2 or dim % 2:
        raise ValueError(f"need length >= 1 and an even dim >= 2, got length={length}, dim={dim}")
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)  # (T, 1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))  # (dim/2,)
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq)
    return pe
