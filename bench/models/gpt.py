"""Pixel GPT: a decoder-only transformer over raster-ordered pixel tokens.

Colour images are sequences of sub-pixels (R, G, B of each pixel in turn, `bench.models.pixel_tokens`):
C*H*W tokens (784 for MNIST, 3,072 for CIFAR-10) over the data's own levels, so bits/dim is exact.

Learned token and position embeddings, pre-norm blocks with causal attention
(`bench.models.kv_attention`), a softmax over the levels. Sampling feeds one token per step
through a key/value cache allocated once per call; `kv_cache=False` re-runs the prefix
instead (only to measure what the cache saves).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.data.spec import DatasetSpec
from bench.models.base import GenerativeModule
from bench.models.kv_attention import CausalSelfAttention, KVCache
from bench.models.pixel_tokens import (
    bits_per_dim, check_sampling_options, check_vocabulary, draw, from_tokens, shift_right, to_tokens,
)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, d_model: int, heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(d_model, mlp_ratio * d_model), nn.GELU(),
                                 nn.Linear(mlp_ratio * d_model, d_model), nn.Dropout(dropout))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int, start: int) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.ln1(x), cache, layer, start))
        return x + self.mlp(self.ln2(x))


class PixelGPTNet(nn.Module):
    """Token + position embeddings -> `layers` blocks -> layer norm -> logits over the levels.

    `levels` / `max_positions` fix the vocabulary and context (None: the dataset's own); the
    start token is `levels`.
    """

    def __init__(self, spec: DatasetSpec, d_model: int = 128, layers: int = 2, heads: int = 4,
                 mlp_ratio: int = 4, dropout: float = 0.0, levels: int | None = None,
                 max_positions: int | None = None):
        super().__init__()
        self.levels, self.max_positions = check_vocabulary(spec, levels, max_positions, "model.net")
        self.d_model, self.num_layers, self.heads = d_model, layers, heads
        self.token_embedding = nn.Embedding(self.levels + 1, d_model)
        self.position_embedding = nn.Embedding(self.max_positions, d_model)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, heads, mlp_ratio, dropout) for _ in range(layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, self.levels)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        # Small normal init (as in GPT-2): keeps early logits near uniform for a stable start.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def start_token(self) -> int:
        return self.levels

    def new_cache(self, batch: int) -> KVCache:
        """A cache for `batch` sequences of up to `max_positions` tokens on the net's device."""
        weight = self.head.weight
        return KVCache(self.num_layers, batch, self.heads, self.max_positions, self.d_model // self.heads,
                       device=weight.device, dtype=weight.dtype)

    def forward(self, inputs: torch.Tensor, cache: KVCache | None = None, start: int = 0) -> torch.Tensor:
        """Input tokens `[B, T]` at positions `start..start+T-1` -> logits `[B, T, levels]`."""
        positions = torch.arange(start, start + inputs.shape[1], device=inputs.device)
        x = self.dropout(self.token_embedding(inputs) + self.position_embedding(positions))
        for layer, block in enumerate(self.blocks):
            x = block(x, cache, layer, start)
        return self.head(self.ln(x))


class PixelGPT(GenerativeModule):
    """Pixel-autoregressive transformer with an exact likelihood.

    `temperature` / `top_k` shape sampling for display only; metrics use the defaults (1, None).
    """

    family = "gpt"
    likelihood = "exact"

    def __init__(self, net: PixelGPTNet | None, spec: DatasetSpec, temperature: float = 1.0,
                 top_k: int | None = None, kv_cache: bool = True, **kwargs):
        net = net if net is not None else PixelGPTNet(spec)
        super().__init__(net=net, spec=spec, **kwargs)
        check_sampling_options(temperature, top_k, net.levels)
        self.temperature, self.top_k, self.kv_cache = float(temperature), top_k, bool(kv_cache)

    def nll_bits_per_dim(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher-forced NLL of uint8 images `[B, C, H, W]` in bits/dim, `[B]`."""
        tokens = to_tokens(x)
        return bits_per_dim(self.net(shift_right(tokens, self.net.start_token)), tokens)

    @torch.no_grad()
    def stepwise_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log-likelihood (nats) of uint8 images `[B, C, H, W]` -> `[B]`, scored one token at a
        time through the cached sampling path."""
        tokens = to_tokens(x)
        cache = self.net.new_cache(len(tokens))
        token = torch.full_like(tokens[:, 0], self.net.start_token)
        total = torch.zeros(len(tokens), device=tokens.device, dtype=self.net.head.weight.dtype)
        for t in range(tokens.shape[1]):
            logits = self.net(token[:, None], cache, start=t)[:, 0]
            total += torch.log_softmax(logits, dim=-1).gather(1, tokens[:, t, None]).squeeze(1)
            token = tokens[:, t]
        return total

    def generate(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Level indices `[n, C, H, W]` int64, one token per step."""
        length = self.spec.dims
        # Column 0 holds the start token; column t+1 receives the token drawn at step t.
        seq = torch.full((n, length + 1), self.net.start_token, dtype=torch.long, device=self.device)
        cache = self.net.new_cache(n) if self.kv_cache else None
        for t in range(length):
            if cache is not None:
                logits = self.net(seq[:, t : t + 1], cache, start=t)[:, -1]
            else:
                logits = self.net(seq[:, : t + 1])[:, -1]
            seq[:, t + 1] = draw(logits, generator, self.temperature, self.top_k)
        return from_tokens(seq[:, 1:], self.spec.shape)

    def configure_optimizers(self):
        # Decoupled weight decay on matrices only; norms, biases and embeddings are left free.
        decay = [p for name, p in self.net.named_parameters() if p.dim() >= 2 and "embedding" not in name]
        rest = [p for name, p in self.net.named_parameters() if not (p.dim() >= 2 and "embedding" not in name)]
        groups = [{"params": decay, "weight_decay": self.weight_decay}, {"params": rest, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=self.lr, betas=self.betas)
