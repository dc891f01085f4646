"""Pixel RNN: an LSTM (or GRU) over raster-ordered pixel tokens with a softmax over the levels.

Colour images are sequences of sub-pixels (R, G, B of each pixel in turn, `bench.models.pixel_tokens`),
so an image is C*H*W tokens (784 for MNIST, 3,072 for CIFAR-10) over the data's own levels and
bits/dim is the exact figure the literature reports.

Training is teacher forcing over the whole sequence in one call of the recurrent layer;
sampling carries the recurrent state one token at a time and never re-runs the prefix.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.data.spec import DatasetSpec
from bench.errors import ConfigError
from bench.models.base import GenerativeModule
from bench.models.pixel_tokens import (
    bits_per_dim, check_sampling_options, check_vocabulary, draw, from_tokens, shift_right, to_tokens,
)

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class PixelRNNNet(nn.Module):
    """Token embedding (+ optional learned position embedding) -> stacked LSTM/GRU -> logits.

    `levels` / `max_positions` fix the vocabulary and sequence length (None: the dataset's own).
    The start token is `levels`; positions index the token being predicted, so the network
    knows where in the raster it is (row ends) without counting steps.
    """

    def __init__(self, spec: DatasetSpec, hidden: int = 192, layers: int = 2, embed_dim: int = 64,
                 cell: str = "lstm", dropout: float = 0.25, position_embedding: bool = True,
                 levels: int | None = None, max_positions: int | None = None):
        super().__init__()
        if cell not in CELLS:
            raise ConfigError("model.net.cell", cell, f"one of {', '.join(CELLS)}")
        self.levels, self.max_positions = check_vocabulary(spec, levels, max_positions, "model.net")
        self.cell, self.hidden, self.num_layers, self.embed_dim = cell, hidden, layers, embed_dim
        self.token_embedding = nn.Embedding(self.levels + 1, embed_dim)
        self.position_embedding = nn.Embedding(self.max_positions, embed_dim) if position_embedding else None
        self.rnn = CELLS[cell](embed_dim, hidden, num_layers=layers, batch_first=True,
                               dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, self.levels)

    @property
    def start_token(self) -> int:
        return self.levels

    def _embed(self, inputs: torch.Tensor, start: int) -> torch.Tensor:
        h = self.token_embedding(inputs)
        if self.position_embedding is not None:
            positions = torch.arange(start, start + inputs.shape[1], device=inputs.device)
            h = h + self.position_embedding(positions)
        return self.dropout(h)

    def forward(self, inputs: torch.Tensor, state=None, start: int = 0):
        """Input tokens `[B, T]` at positions `start..start+T-1` -> logits `[B, T, levels]` and
        the recurrent state after them."""
        out, state = self.rnn(self._embed(inputs, start), state)
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
    likelihood = "exact"

    def __init__(self, net: PixelRNNNet | None, spec: DatasetSpec, temperature: float = 1.0,
                 top_k: int | None = None, **kwargs):
        net = net if net is not None else PixelRNNNet(spec)
        super().__init__(net=net, spec=spec, **kwargs)
        check_sampling_options(temperature, top_k, net.levels)
        self.temperature, self.top_k = float(temperature), top_k

    def nll_bits_per_dim(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher-forced NLL of uint8 images `[B, C, H, W]` in bits/dim, `[B]`."""
        tokens = to_tokens(x)
        logits, _ = self.net(shift_right(tokens, self.net.start_token))
        return bits_per_dim(logits, tokens)

    @torch.no_grad()
    def stepwise_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log-likelihood (nats) of uint8 images `[B, C, H, W]` -> `[B]`, scored one token at a
        time through the sampling path (recurrent state carried, prefix never re-run)."""
        tokens = to_tokens(x)
        token, state = torch.full_like(tokens[:, 0], self.net.start_token), None
        total = torch.zeros(len(tokens), device=tokens.device, dtype=self.net.head.weight.dtype)
        for t in range(tokens.shape[1]):
            logits, state = self.net(token[:, None], state, start=t)
            total += torch.log_softmax(logits[:, 0], dim=-1).gather(1, tokens[:, t, None]).squeeze(1)
            token = tokens[:, t]
        return total

    def generate(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Level indices `[n, C, H, W]` int64, one token per step with the state carried."""
        length = self.spec.dims
        tokens = torch.empty(n, length, dtype=torch.long, device=self.device)
        token, state = torch.full((n,), self.net.start_token, dtype=torch.long, device=self.device), None
        for t in range(length):
            logits, state = self.net(token[:, None], state, start=t)
            token = draw(logits[:, 0], generator, self.temperature, self.top_k)
            tokens[:, t] = token
        return from_tokens(tokens, self.spec.shape)

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
        return torch.optim.AdamW(self.net.parameters(), lr=self.lr, betas=self.betas,
                                 weight_decay=self.weight_decay)

