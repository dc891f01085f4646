"""Two baseline "generators" fitted in closed form, reported like any model.

- `IndependentPixels`: one categorical over the levels per pixel, from training counts plus
  Laplace smoothing — the trivial likelihood model every family must beat.
- `TrainingSetCopier`: returns random training images — what perfect memorization looks like
  (memorization ~1, feature metrics near the data floor, no likelihood).

Training code calls `fit_closed_form(train_images)` instead of `trainer.fit` when a class sets
`fits_in_closed_form = True`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from bench.data.spec import DatasetSpec
from bench.errors import BenchError
from bench.models.base import GenerativeModule


class PixelLogits(nn.Module):
    """Per-pixel log-probabilities `[C, H, W, levels]` (fitted, never trained by gradient)."""

    def __init__(self, spec: DatasetSpec):
        super().__init__()
        uniform = torch.full((*spec.shape, spec.levels), -math.log(spec.levels))
        self.log_probs = nn.Parameter(uniform, requires_grad=False)


class IndependentPixels(GenerativeModule):
    """Independent categorical per pixel; exact likelihood."""

    family: ClassVar[str] = "independent_pixels"
    likelihood: ClassVar[str] = "exact"
    fits_in_closed_form: ClassVar[bool] = True

    def __init__(self, net: nn.Module | None, spec: DatasetSpec, smoothing: float = 0.5, **kwargs):
        if smoothing <= 0:
            from bench.errors import ConfigError

            raise ConfigError("model.module.smoothing", smoothing, "a positive number (Laplace pseudo-count)")
        super().__init__(net if net is not None else PixelLogits(spec), spec, **kwargs)
        self.smoothing = smoothing

    @torch.no_grad()
    def fit_closed_form(self, train_images_uint8: torch.Tensor) -> None:
        """Set each pixel's categorical to its smoothed level frequencies in uint8 `[N, C, H, W]`."""
        if len(train_images_uint8) == 0:
            raise BenchError("independent_pixels: expected training images to fit, got none")
        counts = F.one_hot(train_images_uint8.long(), self.spec.levels).sum(0).to(torch.float64)
        probs = (counts + self.smoothing) / (len(train_images_uint8) + self.spec.levels * self.smoothing)
        self.net.log_probs.copy_(probs.log().to(self.net.log_probs))

    def nll_bits_per_dim(self, x: torch.Tensor) -> torch.Tensor:
        """Exact NLL of uint8 `[B, C, H, W]` in bits/dim, `[B]`."""
        log_probs = self.net.log_probs.expand(len(x), *self.net.log_probs.shape)
        ll = log_probs.gather(-1, x.long().unsqueeze(-1)).squeeze(-1)  # [B, C, H, W]
        return -ll.flatten(1).mean(1) / math.log(2)

    def analytic_flops(self, kind: str) -> float | None:
        # fitting adds one count per pixel; sampling scans one cumulative distribution per pixel
        return float(self.spec.dims * (1 if kind == "train" else self.spec.levels))

    def generate(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Level indices `[n, C, H, W]` (int64), every pixel drawn independently."""
        probs = self.net.log_probs.exp().reshape(-1, self.spec.levels)  # [D, L]
        draws = torch.multinomial(probs, n, replacement=True, generator=generator)  # [D, n]
        return draws.t().reshape(n, *self.spec.shape)


class TrainingSetCopier(GenerativeModule):
    """Samples are training images drawn uniformly with replacement; no likelihood."""

    family: ClassVar[str] = "copier"
    likelihood: ClassVar[str] = "none"
    selection_metric: ClassVar[str | None] = None
    fits_in_closed_form: ClassVar[bool] = True

    def __init__(self, net: nn.Module | None, spec: DatasetSpec, **kwargs):
        super().__init__(net if net is not None else nn.Module(), spec, **kwargs)
        self.register_buffer("images", torch.zeros((0, *spec.shape), dtype=torch.uint8))

    @torch.no_grad()
    def fit_closed_form(self, train_images_uint8: torch.Tensor) -> None:
        """Keep a copy of the uint8 `[N, C, H, W]` training images."""
        if len(train_images_uint8) == 0:
            raise BenchError("copier: expected training images to copy, got none")
        self.images = train_images_uint8.to(self.images.device, torch.uint8).clone()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the copied set's size is known only from the checkpoint
        stored = state_dict.get(prefix + "images")
        if stored is not None:
            self.images = torch.empty_like(stored, device=self.images.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def generate(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if len(self.images) == 0:
            raise BenchError("copier: call fit_closed_form(train_images) before sampling")
        idx = torch.randint(0, len(self.images), (n,), generator=generator, device=self.images.device)
        return self.images[idx]

    def analytic_flops(self, kind: str) -> float | None:
        return 0.0  # copying an image is a memory read, not arithmetic


def fit_on(module: GenerativeModule, datamodule) -> None:
    """Fit a closed-form model on `datamodule`'s training images (and labels, when conditional)."""
    if module.conditional:
        module.fit_closed_form(datamodule.train_images, labels=datamodule.train_labels)
    else:
        module.fit_closed_form(datamodule.train_images)
