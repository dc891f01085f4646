"""Images as raster sequences of pixel tokens, shared by the autoregressive families.

An image `[C, H, W]` becomes `C*H*W` tokens in raster order with the channels of one pixel
next to each other (R, G, B of pixel 0, then pixel 1, ...). Token values are the data's levels
`0..levels-1`; the extra token `levels` is the start token that opens every sequence (the GPT's
conditional nets add class tokens after it, `bench.models.gpt`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bench.core.errors import BenchError, ConfigError
from bench.data.spec import DatasetSpec


def check_vocabulary(spec: DatasetSpec, levels: int | None, max_positions: int | None, key: str) -> tuple[int, int]:
    """Resolve the configured vocabulary and sequence length against `spec`.

    `None` takes the dataset's own value; a configured value too small for the data fails here,
    at build time, with one sentence naming `key`.
    """
    levels = spec.levels if levels is None else int(levels)
    if spec.levels > levels:
        raise ConfigError(f"{key}.levels", levels, f"at least the {spec.levels} levels of dataset {spec.name!r}")
    max_positions = spec.dims if max_positions is None else int(max_positions)
    if spec.dims > max_positions:
        raise ConfigError(
            f"{key}.max_positions",
            max_positions,
            f"at least the {spec.dims} pixel tokens (C*H*W) of a {spec.name!r} image",
        )
    return levels, max_positions


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """uint8 images `[B, C, H, W]` -> int64 tokens `[B, H*W*C]`, channels interleaved per pixel."""
    return x.permute(0, 2, 3, 1).reshape(len(x), -1).long()


def from_tokens(tokens: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """int64 tokens `[B, H*W*C]` -> level indices `[B, C, H, W]` (inverse of `to_tokens`)."""
    c, h, w = shape
    return tokens.reshape(len(tokens), h, w, c).permute(0, 3, 1, 2).contiguous()


def shift_right(tokens: torch.Tensor, start_token: int | torch.Tensor) -> torch.Tensor:
    """Inputs for teacher forcing: `[B, L]` -> `[B, L]` with the start token first (one for all
    rows, or one per row `[B]`) and the last token dropped, so position t sees tokens `< t` and
    predicts token t."""
    if isinstance(start_token, torch.Tensor):
        start = start_token.to(tokens).view(-1, 1)
    else:
        start = torch.full_like(tokens[:, :1], start_token)
    return torch.cat([start, tokens[:, :-1]], dim=1)


def bits_per_dim(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log2-likelihood per token: logits `[B, L, V]`, targets `[B, L]` -> `[B]`."""
    nats = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return nats.mean(dim=1) / math.log(2.0)


def forced_log_prob(tokens: torch.Tensor, dtype: torch.dtype, decode) -> torch.Tensor:
    """Log-likelihood (nats) `[B]` of `tokens` `[B, T]` scored one token at a time: `decode(score)`
    runs a sampling loop that calls `score(logits)` at each position and feeds back the token it
    returns (the data's own), so the scores come from the very code path that samples."""
    total = torch.zeros(len(tokens), device=tokens.device, dtype=dtype)
    step = iter(range(tokens.shape[1]))

    def score(logits: torch.Tensor) -> torch.Tensor:
        t = next(step)
        total.add_(torch.log_softmax(logits, dim=-1).gather(1, tokens[:, t, None]).squeeze(1))
        return tokens[:, t]

    decode(score)
    return total


def with_null_stream(labels: torch.Tensor, null_label: int) -> torch.Tensor:
    """Labels `[n]` -> `[2n]`: the labels, then as many null labels — the conditional and the
    unconditional stream of classifier-free guidance, sampled as one batch."""
    return torch.cat([labels, torch.full_like(labels, null_label)])


def guided_logits(logits: torch.Tensor, weight: float) -> torch.Tensor:
    """Classifier-free guidance: logits `[2n, V]` of the stacked streams (`with_null_stream`)
    -> `[n, V]` = `(1 + w) * conditional - w * unconditional`."""
    conditional, unconditional = logits.chunk(2)
    return (1 + weight) * conditional - weight * unconditional


def draw(
    logits: torch.Tensor, generator: torch.Generator | None, temperature: float = 1.0, top_k: int | None = None
) -> torch.Tensor:
    """One token per row from logits `[B, V]` -> `[B]` int64, all randomness from `generator`."""
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    # The exponential race argmax(p / q), q ~ Exp(1), is the draw `torch.multinomial(probs, 1)`
    # makes internally (same generator use, same tokens), without its validity checks, which
    # copy to the host: on a GPU that would stall every one of the C*H*W sampling steps.
    race = torch.empty_like(probs).exponential_(1, generator=generator)
    return (probs / race).argmax(dim=-1)


def check_sampling_options(temperature: float, top_k: int | None, levels: int) -> None:
    """Reject sampling options that cannot work (`model.module.temperature` / `top_k`)."""
    if not temperature > 0:
        raise ConfigError("model.module.temperature", temperature, "a positive number")
    if top_k is not None and not 1 <= top_k:
        raise ConfigError("model.module.top_k", top_k, f"null or an integer in 1..{levels}")


def check_net_classes(net: torch.nn.Module, num_classes: int) -> None:
    """A conditional model needs a network built with its `num_classes` (`build_model` passes it)."""
    if getattr(net, "num_classes", 0) != num_classes:
        raise BenchError(
            f"model.net: the network embeds {getattr(net, 'num_classes', 0)} classes, the model "
            f"conditions on {num_classes}; build the net with num_classes={num_classes}"
        )
