"""Pixel GPT: a decoder-only transformer over raster-ordered pixel tokens.

Colour images are sequences of sub-pixels (R, G, B of each pixel in turn, `bench.models.pixel_tokens`):
C*H*W tokens (784 for MNIST, 3,072 for CIFAR-10) over the data's own levels, so bits/dim is exact.

Learned token and position embeddings, pre-norm blocks with causal attention
(`bench.models.kv_attention`), a softmax over the levels. Sampling feeds one token per step
through a key/value cache allocated once per call; `kv_cache=False` re-runs the prefix
instead (only to measure what the cache saves).

Conditional models (`model.conditional=true`) open each sequence with a class token instead of
the start token, as class-conditional image transformers do (the class is token 0, the pixels
follow): token `levels + y` for class y, and `levels + num_classes` — the null label — for "no
label", which is the unconditional start. Classifier-free guidance (`guidance = w > 0`) runs a
conditional and a null-label stream as one batch of 2n sequences in one cache and draws each
token from `(1 + w) * conditional - w * unconditional` logits (sampling then needs twice the
memory of the cache).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from bench.core.errors import BenchError
from bench.data.spec import DatasetSpec
from bench.models.base import GenerativeModule
from bench.models.kv_attention import CausalSelfAttention, KVCache
from bench.models.pixel_tokens import (
    bits_per_dim,
    check_net_classes,
    check_sampling_options,
    check_vocabulary,
    draw,
    forced_log_prob,
    from_tokens,
    guided_logits,
    shift_right,
    to_tokens,
    with_null_stream,
)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, d_model: int, heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, heads, dropout)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, mlp_ratio * d_model),
            nn.GELU(),
            nn.Linear(mlp_ratio * d_model, d_model),
            nn.Dropout(dropout),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int, start: int) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.ln1(x), cache, layer, start))
        return x + self.mlp(self.ln2(x))


class PixelGPTNet(nn.Module):
    """Token + position embeddings -> `layers` blocks -> layer norm -> logits over the levels.

    `levels` / `max_positions` fix the vocabulary and context (None: the dataset's own). The
    first token of a sequence is `levels + y`: y in `0..num_classes-1` a class token, y =
    `num_classes` the start token (the null label; just `levels` on an unconditional net).
    """

    def __init__(
        self,
        spec: DatasetSpec,
        d_model: int = 128,
        layers: int = 2,
        heads: int = 4,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        levels: int | None = None,
        max_positions: int | None = None,
        num_classes: int = 0,
    ):
        super().__init__()
        self.levels, self.max_positions = check_vocabulary(spec, levels, max_positions, "model.net")
        self.d_model, self.num_layers, self.heads = d_model, layers, heads
        self.num_classes = int(num_classes)
        self.token_embedding = nn.Embedding(self.levels + 1 + self.num_classes, d_model)
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
        """The token that opens an unconditional sequence (the null label's class token)."""
        return self.levels + self.num_classes

    def new_cache(self, batch: int) -> KVCache:
        """A cache for `batch` sequences of up to `max_positions` tokens on the net's device."""
        weight = self.head.weight
        return KVCache(
            self.num_layers,
            batch,
            self.heads,
            self.max_positions,
            self.d_model // self.heads,
            device=weight.device,
            dtype=weight.dtype,
        )

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
    networks = ("bench.models.gpt.PixelGPTNet",)
    likelihood = "exact"
    supports_conditional = True
    supports_guidance = True

    def __init__(
        self,
        net: PixelGPTNet | None,
        spec: DatasetSpec,
        temperature: float = 1.0,
        top_k: int | None = None,
        kv_cache: bool = True,
        **kwargs,
    ):
        classes = spec.num_classes if kwargs.get("conditional") is True else 0
        net = net if net is not None else PixelGPTNet(spec, num_classes=classes)
        super().__init__(net=net, spec=spec, **kwargs)
        check_net_classes(net, self.num_classes)
        check_sampling_options(temperature, top_k, net.levels)
        self.temperature, self.top_k, self.kv_cache = float(temperature), top_k, bool(kv_cache)

    def first_tokens(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        """The token opening each of `n` sequences `[n]`: the class token of each label (int64
        `[n]` in `0..num_classes`, `null_label` = no label), or the start token when None."""
        if labels is None:
            return torch.full((n,), self.net.start_token, dtype=torch.long, device=self.device)
        if not self.conditional:
            raise BenchError("labels: this model is unconditional (model.conditional=false); call it without labels")
        return self.net.levels + labels

    def nll_bits_per_dim(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced NLL of uint8 images `[B, C, H, W]` in bits/dim, `[B]`: -log2 p(x | labels)
        / dims, or on a conditional model without labels the marginal under uniform classes."""
        if labels is None and self.conditional:
            return self.marginal_bits_per_dim(x, self.nll_bits_per_dim)
        tokens = to_tokens(x)
        return bits_per_dim(self.net(shift_right(tokens, self.first_tokens(labels, len(x)))), tokens)

    def decode(self, first: torch.Tensor, next_token: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The one token-by-token loop, shared by sampling and stepwise scoring: sequences opened
        by the tokens `first` `[B]`; each step's logits `[B, levels]` go to `next_token`, whose
        tokens `[B]` are fed next. Returns the fed tokens `[B, dims]`."""
        length = self.spec.dims
        # Column 0 holds the first token; column t+1 receives the token chosen at step t.
        seq = torch.empty((len(first), length + 1), dtype=torch.long, device=first.device)
        seq[:, 0] = first
        cache = self.net.new_cache(len(first)) if self.kv_cache else None
        for t in range(length):
            if cache is not None:
                logits = self.net(seq[:, t : t + 1], cache, start=t)[:, -1]
            else:
                logits = self.net(seq[:, : t + 1])[:, -1]
            seq[:, t + 1] = next_token(logits)
        return seq[:, 1:]

    @torch.no_grad()
    def stepwise_log_prob(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Log-likelihood (nats) of uint8 images `[B, C, H, W]` (given `labels` `[B]` on a
        conditional model) -> `[B]`, scored one token at a time through the sampling loop."""
        if labels is None and self.conditional:
            raise BenchError("labels: stepwise scoring of a conditional model needs one label per image")
        tokens = to_tokens(x)
        return forced_log_prob(
            tokens, self.net.head.weight.dtype, lambda score: self.decode(self.first_tokens(labels, len(tokens)), score)
        )

    def generate(
        self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Level indices `[n, C, H, W]` int64, one token per step (of the classes `labels` on a
        conditional model, guided when `self.guidance > 0`)."""
        weight = self.guidance if labels is not None else 0.0
        if weight > 0:  # the conditional and the null-label stream in one batch
            first = self.first_tokens(with_null_stream(labels, self.null_label), 2 * n)
            tokens = self.decode(
                first,
                lambda logits: draw(guided_logits(logits, weight), generator, self.temperature, self.top_k).repeat(2),
            )
        else:
            tokens = self.decode(
                self.first_tokens(labels, n), lambda logits: draw(logits, generator, self.temperature, self.top_k)
            )
        return from_tokens(tokens[:n], self.spec.shape)

    def configure_optimizers(self):
        # Decoupled weight decay on matrices only; norms, biases and embeddings are left free.
        decay = [p for name, p in self.net.named_parameters() if p.dim() >= 2 and "embedding" not in name]
        rest = [p for name, p in self.net.named_parameters() if not (p.dim() >= 2 and "embedding" not in name)]
        groups = [{"params": decay, "weight_decay": self.weight_decay}, {"params": rest, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=self.lr, betas=self.betas)
