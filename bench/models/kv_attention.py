"""Causal self-attention with an optional preallocated key/value cache.

Training and scoring run the whole sequence at once (`is_causal=True`); sampling feeds one new
token per step, writes its keys/values into a cache allocated once per sampling call, and attends
over the cached prefix instead of recomputing it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.core.errors import ConfigError


class KVCache:
    """Keys and values of every layer: `keys`, `values` `[layers, B, heads, max_len, head_dim]`,
    allocated once; position `t` of a layer is written when token `t` passes through it."""

    def __init__(
        self,
        layers: int,
        batch: int,
        heads: int,
        max_len: int,
        head_dim: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        shape = (layers, batch, heads, max_len, head_dim)
        self.keys = torch.empty(shape, device=device, dtype=dtype)
        self.values = torch.empty(shape, device=device, dtype=dtype)

    @property
    def max_len(self) -> int:
        return self.keys.shape[3]


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention over `[B, T, d_model]` through `scaled_dot_product_attention`."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % heads:
            raise ConfigError("model.net.heads", heads, f"a divisor of d_model={d_model}")
        self.heads, self.head_dim, self.dropout = heads, d_model // heads, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0, start: int = 0) -> torch.Tensor:
        """`x` `[B, T, d_model]` holds positions `start..start+T-1`; with a cache, their keys and
        values are stored in it and the queries attend over positions `0..start+T-1`."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        dropout = self.dropout if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        else:
            end = start + t
            cache.keys[layer, :, :, start:end] = k
            cache.values[layer, :, :, start:end] = v
            k, v = cache.keys[layer, :, :, :end], cache.values[layer, :, :, :end]
            # One new token sees the whole prefix: no mask. Several: query i sees keys <= start+i.
            mask = None if t == 1 else torch.ones(t, end, dtype=torch.bool, device=x.device).tril(start)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))
