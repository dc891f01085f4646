"""FID, KID and Inception Score through torchmetrics, with any feature module.

The feature module maps a batch of inputs (uint8 images for the reference classifier) to float64
features `[N, D]` and carries `num_features`. KID and IS draw their subsets/permutations with
`torch.randperm` on the global RNG inside torchmetrics; we run their `compute` under a forked,
seeded RNG so the result depends on the protocol seed alone and the caller's RNG is untouched.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from bench.core.errors import BenchError

BATCH = 500
#: Every metric here sees all of its images in this process: never gather states across DDP ranks
#: (a quality-curve point is measured on rank 0 alone while the other ranks train).
LOCAL = {"sync_on_compute": False}


class Precomputed(nn.Module):
    """Identity over features already extracted, `[N, D]` -> `[N, D]`, for torchmetrics' `feature=`.

    Lets one evaluation extract each image set's features once and feed FID, KID and IS from them.
    """

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


@contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """Run a block on a private CPU RNG seeded with `seed`; the global RNG is restored after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _update(metric, inputs: torch.Tensor, **kwargs) -> None:
    for start in range(0, len(inputs), BATCH):
        metric.update(inputs[start : start + BATCH], **kwargs)


def _check_sizes(real: torch.Tensor, fake: torch.Tensor, minimum: int, what: str) -> None:
    if len(real) < minimum or len(fake) < minimum:
        raise BenchError(
            f"{what}: expected at least {minimum} reference and generated images, got {len(real)} and {len(fake)}"
        )


@torch.no_grad()
def frechet_distance(feature: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between `real` and `fake` inputs in `feature`'s space (float64 statistics)."""
    _check_sizes(real, fake, 2, "FID")
    metric = FrechetInceptionDistance(feature=feature, **LOCAL)
    _update(metric, real, real=True)
    _update(metric, fake, real=False)
    return float(metric.compute())


@torch.no_grad()
def kernel_distance(
    feature: nn.Module, real: torch.Tensor, fake: torch.Tensor, subset_size: int, subsets: int, seed: int
) -> tuple[float, float]:
    """KID mean and std over `subsets` random subsets of `subset_size` (capped at the smaller set).

    The unbiased MMD estimate is reported signed: a value below zero means "indistinguishable at
    this sample size", and clamping it would bias the mean.
    """
    _check_sizes(real, fake, 2, "KID")
    size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "stores all features": intended, the sets are small
        metric = KernelInceptionDistance(feature=feature, subsets=subsets, subset_size=size, **LOCAL)
    _update(metric, real, real=True)
    _update(metric, fake, real=False)
    with seeded_rng(seed):
        mean, std = metric.compute()
    return float(mean), float(std)


@torch.no_grad()
def inception_score(logits: nn.Module, fake: torch.Tensor, seed: int, splits: int = 1) -> float:
    """Inception Score (mean over `splits`) of `fake` from a module returning logits `[N, K]`."""
    _check_sizes(fake, fake, max(splits, 1), "Inception Score")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric = InceptionScore(feature=logits, splits=splits, **LOCAL)
    _update(metric, fake)
    with seeded_rng(seed), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the std of a single split is undefined; we keep the mean
        mean, _ = metric.compute()
    return float(mean)
