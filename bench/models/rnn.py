"""Pixel RNN: an LSTM (or GRU) over raster-ordered pixel tokens with a softmax over the levels.

Colour images are sequences of sub-pixels (R, G, B of each pixel in turn, `bench.models.pixel_tokens`),
so an image is C*H*W tokens (784 for MNIST, 3,072 for CIFAR-10) over the data's own levels and
bits/dim is the exact figure the literature reports.

Training is teacher forcing over the whole sequence in one call of the recurrent layer;
sampling carries the recurrent state one token at a time and never re-runs the prefix.

Conditional models (`model.conditional=true`) add a learned class embedding to the input
embedding of every token, as the conditional PixelCNN/PixelRNN decoders add a class-dependent
bias at every position (rather than only in the initial state, which a long raster sequence
forgets). Row `num_classes` of the class embedding is the null label ("no label": dropped
labels in training, the unconditional stream of guidance). Classifier-free guidance
(`guidance = w > 0`) carries the states of a conditional and a null-label stream as one batch of
2n sequences and draws each token from `(1 + w) * conditional - w * unconditional` logits.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from bench.core.errors import BenchError, ConfigError
from bench.data.spec import DatasetSpec
from bench.models.base import GenerativeModule
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

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class PixelRNNNet(nn.Module):
    """Token embedding (+ optional learned position embedding) -> stacked LSTM/GRU -> logits.

    `levels` / `max_positions` fix the vocabulary and sequence length (None: the dataset's own).
    The start token is `levels`; positions index the token being predicted, so the network
    knows where in the raster it is (row ends) without counting steps. With `num_classes > 0`,
    a class embedding (`num_classes + 1` rows, the last the null label) joins every input.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        hidden: int = 192,
        layers: int = 2,
        embed_dim: int = 64,
        cell: str = "lstm",
        dropout: float = 0.25,
        position_embedding: bool = True,
        levels: int | None = None,
        max_positions: int | None = None,
        num_classes: int = 0,
    ):
        super().__init__()
        if cell not in CELLS:
            raise ConfigError("model.net.cell", cell, f"one of {', '.join(CELLS)}")
        self.levels, self.max_positions = check_vocabulary(spec, levels, max_positions, "model.net")
        self.cell, self.hidden, self.num_layers, self.embed_dim = cell, hidden, layers, embed_dim
        self.token_embedding = nn.Embedding(self.levels + 1, embed_dim)
        self.position_embedding = nn.Embedding(self.max_positions, embed_dim) if position_embedding else None
        self.num_classes = int(num_classes)
        self.class_embedding = nn.Embedding(self.num_classes + 1, embed_dim) if self.num_classes else None
        self.rnn = CELLS[cell](
            embed_dim, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, self.levels)

    @property
    def start_token(self) -> int:
        return self.levels

    def _embed(self, inputs: torch.Tensor, start: int, labels: torch.Tensor | None) -> torch.Tensor:
        h = self.token_embedding(inputs)
        if self.position_embedding is not None:
            positions = torch.arange(start, start + inputs.shape[1], device=inputs.device)
            h = h + self.position_embedding(positions)
        if self.class_embedding is not None:
            if labels is None:
                raise BenchError("labels: a conditional network needs one label per sequence (null label: no label)")
            h = h + self.class_embedding(labels)[:, None]
        return self.dropout(h)

    def forward(self, inputs: torch.Tensor, state=None, start: int = 0, labels: torch.Tensor | None = None):
        """Input tokens `[B, T]` at positions `start..start+T-1` (of sequences of classes
        `labels` `[B]` on a conditional net) -> logits `[B, T, levels]` and the recurrent state
        after them."""
        out, state = self.rnn(self._embed(inputs, start, labels), state)
        return self.head(self.dropout(out)), state

    def flops_per_token(self) -> float:
        """Multiply-adds x 2 of one recurrent step through every layer plus the head."""
        gates = 4 if self.cell == "lstm" else 3
        inputs = [self.embed_dim] + [self.hidden] * (self.num_layers - 1)
        recurrent = sum(2 * gates * self.hidden * (i + self.hidden) for i in inputs)
        return float(recurrent + 2 * self.hidden * self.levels)


class PixelRNN(GenerativeModule):
    """Pixel-autoregressive recurrent model with an exact likelihood."""

    family = "rnn"
    networks = ("bench.models.rnn.PixelRNNNet",)
    likelihood = "exact"
    supports_conditional = True
    supports_guidance = True

    def __init__(
        self, net: PixelRNNNet | None, spec: DatasetSpec, temperature: float = 1.0, top_k: int | None = None, **kwargs
    ):
        classes = spec.num_classes if kwargs.get("conditional") is True else 0
        net = net if net is not None else PixelRNNNet(spec, num_classes=classes)
        super().__init__(net=net, spec=spec, **kwargs)
        check_net_classes(net, self.num_classes)
        check_sampling_options(temperature, top_k, net.levels)
        self.temperature, self.top_k = float(temperature), top_k

    def net_labels(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        """`labels` (int64 `[B]` in `0..num_classes`, `null_label` = no label) as the net takes them."""
        if labels is not None and not self.conditional:
            raise BenchError("labels: this model is unconditional (model.conditional=false); call it without labels")
        return labels

    def nll_bits_per_dim(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced NLL of uint8 images `[B, C, H, W]` in bits/dim, `[B]`: -log2 p(x | labels)
        / dims, or on a conditional model without labels the marginal under uniform classes."""
        if labels is None and self.conditional:
            return self.marginal_bits_per_dim(x, self.nll_bits_per_dim)
        tokens = to_tokens(x)
        logits, _ = self.net(shift_right(tokens, self.net.start_token), labels=self.net_labels(labels))
        return bits_per_dim(logits, tokens)

    def decode(
        self, n: int, labels: torch.Tensor | None, next_token: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """The one token-by-token loop, shared by sampling and stepwise scoring: `n` sequences
        (of classes `labels` `[n]` on a conditional model) from the start token, the recurrent
        state carried; each step's logits `[n, levels]` go to `next_token`, whose tokens `[n]`
        are fed next. Returns the fed tokens `[n, dims]`."""
        labels = self.net_labels(labels)
        tokens = torch.empty(n, self.spec.dims, dtype=torch.long, device=self.device)
        token, state = torch.full((n,), self.net.start_token, dtype=torch.long, device=self.device), None
        for t in range(self.spec.dims):
            logits, state = self.net(token[:, None], state, start=t, labels=labels)
            token = next_token(logits[:, 0])
            tokens[:, t] = token
        return tokens

    @torch.no_grad()
    def stepwise_log_prob(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Log-likelihood (nats) of uint8 images `[B, C, H, W]` (given `labels` `[B]` on a
        conditional model) -> `[B]`, scored one token at a time through the sampling loop."""
        if labels is None and self.conditional:
            raise BenchError("labels: stepwise scoring of a conditional model needs one label per image")
        tokens = to_tokens(x)
        return forced_log_prob(
            tokens, self.net.head.weight.dtype, lambda score: self.decode(len(tokens), labels, score)
        )

    def generate(
        self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Level indices `[n, C, H, W]` int64, one token per step with the state carried (of the
        classes `labels` on a conditional model, guided when `self.guidance > 0`)."""
        weight = self.guidance if labels is not None else 0.0
        if weight > 0:  # the conditional and the null-label stream in one batch
            tokens = self.decode(
                2 * n,
                with_null_stream(labels, self.null_label),
                lambda logits: draw(guided_logits(logits, weight), generator, self.temperature, self.top_k).repeat(2),
            )
        else:
            tokens = self.decode(n, labels, lambda logits: draw(logits, generator, self.temperature, self.top_k))
        return from_tokens(tokens[:n], self.spec.shape)

    def analytic_flops(self, kind: str) -> float | None:
        """`nn.LSTM`/`nn.GRU` are invisible to torch's flop counter: count them here.
        'sample': one generated image; 'train': one training image (forward + backward ~ 3x)."""
        per_image = self.net.flops_per_token() * self.spec.dims
        if kind == "sample":
            return per_image
        if kind == "train":
            return 3.0 * per_image
        raise ValueError(f"kind={kind!r}: expected 'sample' or 'train'")

    def configure_optimizers(self):
        return torch.optim.AdamW(self.net.parameters(), lr=self.lr, betas=self.betas, weight_decay=self.weight_decay)
