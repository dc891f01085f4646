"""Tiny conditional models with known answers, for the metrics of conditional runs."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from bench.models.base import GenerativeModule


class ClassCopier(GenerativeModule):
    """Returns training images: of the asked class with probability `honour`, else of any class.

    `honour=1` draws only the asked class (accuracy ≈ the classifier's on training images), `honour=0`
    ignores the label (accuracy ≈ 1/K). With `supports_guidance`, guidance w raises the probability
    to `min(1, honour + w / 2)`, so accuracy grows with w.
    """

    family: ClassVar[str] = "class_copier"
    likelihood: ClassVar[str] = "none"
    selection_metric: ClassVar[str | None] = None
    supports_conditional: ClassVar[bool] = True

    def __init__(self, spec, images: torch.Tensor, labels: torch.Tensor, honour: float = 1.0, **kwargs):
        super().__init__(nn.Linear(1, 1), spec, conditional=True, **kwargs)
        self.register_buffer("images", images.clone())
        self.register_buffer("labels", labels.clone())
        self.honour = honour

    def generate(self, n, generator=None, labels=None):
        p = min(1.0, self.honour + self.guidance / 2)
        device = self.images.device
        keep = torch.rand(n, generator=generator, device=device) < p
        anyone = torch.randint(0, len(self.images), (n,), generator=generator, device=device)
        idx = anyone.clone()
        for c in range(self.num_classes):
            pool = (self.labels == c).nonzero().squeeze(1)
            pick = pool[torch.randint(0, len(pool), (n,), generator=generator, device=device)]
            idx = torch.where(keep & (labels == c), pick, idx)
        return self.images[idx]


class GuidedClassCopier(ClassCopier):
    supports_guidance: ClassVar[bool] = True


class ClassPixels(GenerativeModule):
    """Independent categorical pixels per class (exact likelihood), fitted by smoothed counts."""

    family: ClassVar[str] = "class_pixels"
    likelihood: ClassVar[str] = "exact"
    supports_conditional: ClassVar[bool] = True

    def __init__(self, spec, images: torch.Tensor, labels: torch.Tensor, **kwargs):
        super().__init__(nn.Linear(1, 1), spec, conditional=True, **kwargs)
        counts = torch.stack(
            [F.one_hot(images[labels == c].long(), spec.levels).sum(0).double() for c in range(spec.num_classes)]
        )  # [K, C, H, W, L]
        probs = (counts + 0.5) / (counts.sum(-1, keepdim=True) + 0.5 * spec.levels)
        self.register_buffer("log_probs", probs.log().float())

    def _given(self, x, labels):
        table = self.log_probs[labels]  # [B, C, H, W, L]
        return -table.gather(-1, x.long().unsqueeze(-1)).squeeze(-1).flatten(1).mean(1) / math.log(2)

    def nll_bits_per_dim(self, x, labels=None):
        return self.marginal_bits_per_dim(x, self._given) if labels is None else self._given(x, labels)

    def generate(self, n, generator=None, labels=None):
        probs = self.log_probs[labels].exp()  # [n, C, H, W, L]
        flat = probs.reshape(-1, probs.shape[-1])
        return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])
