"""Two baseline "generators" fitted in closed form, reported like any model.

- `IndependentPixels`: one categorical over the levels per pixel, from training counts plus
  Laplace smoothing — the trivial likelihood model every family must beat.
- `TrainingSetCopier`: returns random training images — what perfect memorization looks like
  (memorization ~1, feature metrics near the data floor, no likelihood).

Training code calls `fit_closed_form(train_images)` instead of `trainer.fit` when a class sets
`fits_in_closed_form = True` (`fit_closed_form(train_images, labels=...)` on conditional models).

Conditional versions (`model.conditional=true`) fit one set of pixel categoricals per class (an
exact p(x | y)), and copy training images of the asked class.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from bench.core.errors import BenchError, ConfigError
from bench.data.spec import DatasetSpec
from bench.models.base import GenerativeModule


class PixelLogits(nn.Module):
    """Per-pixel log-probabilities `[C, H, W, levels]`, or `[num_classes, C, H, W, levels]` per
    class (fitted, never trained by gradient)."""

    def __init__(self, spec: DatasetSpec, num_classes: int = 0):
        super().__init__()
        classes = (num_classes,) if num_classes else ()
        uniform = torch.full((*classes, *spec.shape, spec.levels), -math.log(spec.levels))
        self.log_probs = nn.Parameter(uniform, requires_grad=False)


def training_labels_for(model: GenerativeModule, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """The class of each training image `[N]` (all 0 on an unconditional model), validated."""
    if model.conditional and labels is None:
        raise BenchError(
            f"labels: a conditional {model.family} is fitted on labelled images: "
            "call fit_closed_form(train_images, labels=train_labels)"
        )
    if labels is None:
        return torch.zeros(len(images), dtype=torch.int64, device=model.device)
    return model.check_labels(labels, len(images))


class IndependentPixels(GenerativeModule):
    """Independent categorical per pixel; exact likelihood."""

    family: ClassVar[str] = "independent_pixels"
    likelihood: ClassVar[str] = "exact"
    fits_in_closed_form: ClassVar[bool] = True
    supports_conditional: ClassVar[bool] = True

    def __init__(self, net: nn.Module | None, spec: DatasetSpec, smoothing: float = 0.5, **kwargs):
        if smoothing <= 0:
            raise ConfigError("model.module.smoothing", smoothing, "a positive number (Laplace pseudo-count)")
        classes = spec.num_classes if kwargs.get("conditional") is True else 0
        super().__init__(net if net is not None else PixelLogits(spec, classes), spec, **kwargs)
        self.smoothing = smoothing

    def _class_log_probs(self) -> torch.Tensor:
        """Log-probabilities `[K, C*H*W, levels]` (K = 1 on an unconditional model)."""
        return self.net.log_probs.reshape(-1, self.spec.dims, self.spec.levels)

    @torch.no_grad()
    def fit_closed_form(self, train_images_uint8: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Set each pixel's categorical to its smoothed level frequencies in uint8 `[N, C, H, W]`
        (per class of `labels` `[N]` on a conditional model; a class without images stays uniform)."""
        if len(train_images_uint8) == 0:
            raise BenchError("independent_pixels: expected training images to fit, got none")
        classes = training_labels_for(self, train_images_uint8, labels)
        k, dims, levels = max(self.num_classes, 1), self.spec.dims, self.spec.levels
        # one bincount over (class, pixel, level) cells: N x dims indices, never a one-hot
        cells = (classes[:, None] * dims + torch.arange(dims, device=classes.device)) * levels
        cells = cells + train_images_uint8.to(classes.device).flatten(1).long()
        counts = torch.bincount(cells.flatten(), minlength=k * dims * levels).view(k, dims, levels).to(torch.float64)
        images_per_class = torch.bincount(classes, minlength=k).to(torch.float64).view(k, 1, 1)
        probs = (counts + self.smoothing) / (images_per_class + levels * self.smoothing)
        self.net.log_probs.copy_(probs.log().view_as(self.net.log_probs).to(self.net.log_probs))

    def nll_bits_per_dim(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Exact NLL of uint8 `[B, C, H, W]` in bits/dim, `[B]`: -log2 p(x | labels) / dims, or on
        a conditional model without labels the marginal under uniform classes."""
        if labels is None and self.conditional:
            return self.marginal_bits_per_dim(x, self.nll_bits_per_dim)
        if labels is not None and not self.conditional:
            raise BenchError("labels: this model is unconditional (model.conditional=false); call it without labels")
        log_probs = self._class_log_probs()
        classes = torch.zeros(len(x), dtype=torch.int64, device=x.device) if labels is None else labels
        pixels = torch.arange(self.spec.dims, device=x.device)
        ll = log_probs[classes[:, None], pixels, x.flatten(1).long()]  # [B, C*H*W]
        return -ll.mean(1) / math.log(2)

    def analytic_flops(self, kind: str) -> float | None:
        # fitting adds one count per pixel; sampling scans one cumulative distribution per pixel
        return float(self.spec.dims * (1 if kind == "train" else self.spec.levels))

    def generate(
        self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Level indices `[n, C, H, W]` (int64), every pixel drawn independently (from the
        categoricals of each sample's class on a conditional model)."""
        probs = self._class_log_probs().exp()  # [K, D, L]
        if labels is None:
            draws = torch.multinomial(probs[0], n, replacement=True, generator=generator)  # [D, n]
            return draws.t().reshape(n, *self.spec.shape)
        images = torch.empty((n, self.spec.dims), dtype=torch.int64, device=probs.device)
        for c in range(self.num_classes):  # one batched draw per class
            rows = (labels == c).nonzero().squeeze(1)
            if len(rows):
                images[rows] = torch.multinomial(probs[c], len(rows), replacement=True, generator=generator).t()
        return images.view(n, *self.spec.shape)


class TrainingSetCopier(GenerativeModule):
    """Samples are training images drawn uniformly with replacement (among those of the asked
    class on a conditional model); no likelihood."""

    family: ClassVar[str] = "copier"
    likelihood: ClassVar[str] = "none"
    selection_metric: ClassVar[str | None] = None
    fits_in_closed_form: ClassVar[bool] = True
    supports_conditional: ClassVar[bool] = True

    def __init__(self, net: nn.Module | None, spec: DatasetSpec, **kwargs):
        super().__init__(net if net is not None else nn.Module(), spec, **kwargs)
        self.register_buffer("images", torch.zeros((0, *spec.shape), dtype=torch.uint8))
        if self.conditional:  # images sorted by class; those of class c are class_starts[c]:class_starts[c+1]
            self.register_buffer("class_starts", torch.zeros(self.num_classes + 1, dtype=torch.int64))

    @torch.no_grad()
    def fit_closed_form(self, train_images_uint8: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Keep a copy of the uint8 `[N, C, H, W]` training images (sorted by their `labels` `[N]`
        on a conditional model)."""
        if len(train_images_uint8) == 0:
            raise BenchError("copier: expected training images to copy, got none")
        classes = training_labels_for(self, train_images_uint8, labels)
        images = train_images_uint8.to(self.images.device, torch.uint8)
        if self.conditional:
            order = torch.argsort(classes, stable=True)
            images = images[order.to(images.device)]
            counts = torch.bincount(classes, minlength=self.num_classes).to(self.class_starts)
            self.class_starts.copy_(torch.cat([counts.new_zeros(1), counts.cumsum(0)]))
        self.images = images.clone()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the copied set's size is known only from the checkpoint
        stored = state_dict.get(prefix + "images")
        if stored is not None:
            self.images = torch.empty_like(stored, device=self.images.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def generate(
        self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        if len(self.images) == 0:
            raise BenchError("copier: call fit_closed_form(train_images) before sampling")
        if labels is None:
            idx = torch.randint(0, len(self.images), (n,), generator=generator, device=self.images.device)
            return self.images[idx]
        starts, counts = self.class_starts[:-1], self.class_starts.diff()
        if bool((counts[labels] == 0).any()):
            empty = sorted(set(labels[counts[labels] == 0].tolist()))
            raise BenchError(f"labels: the copier has no training images of class(es) {empty} to copy")
        uniform = torch.rand(n, generator=generator, device=self.images.device)
        offset = torch.minimum((uniform * counts[labels]).long(), counts[labels] - 1)
        return self.images[starts[labels] + offset]

    def analytic_flops(self, kind: str) -> float | None:
        return 0.0  # copying an image is a memory read, not arithmetic


def fit_on(module: GenerativeModule, datamodule) -> None:
    """Fit a closed-form model on `datamodule`'s training images (and labels, when conditional)."""
    if module.conditional:
        module.fit_closed_form(datamodule.train_images, labels=datamodule.train_labels)
    else:
        module.fit_closed_form(datamodule.train_images)
