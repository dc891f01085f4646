"""Precision, recall, density and coverage (Kynkäänniemi et al. 2019; Naeem et al. 2020).

Each real point owns a ball reaching its k-th nearest real neighbour (likewise for generated
points). Precision: share of generated points inside some real ball. Recall: share of real
points inside some generated ball. Density: mean number of real balls holding a generated
point, over k. Coverage: share of real balls holding at least one generated point.
"""

from __future__ import annotations

import torch

from bench.core.errors import BenchError


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of `x` `[N, D]` to its k-th nearest other row, `[N]`."""
    # k+1: the smallest distance is the point to itself
    return torch.cdist(x, x).kthvalue(k + 1, dim=1).values


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of `fake` `[M, D]` against `real` `[N, D]`."""
    if len(real) <= k or len(fake) <= k:
        raise BenchError(
            f"precision/recall with k={k}: expected more than {k} reference and generated "
            f"samples, got {len(real)} and {len(fake)}"
        )
    real, fake = real.double(), fake.double()
    real_radii, fake_radii = knn_radii(real, k), knn_radii(fake, k)
    dist = torch.cdist(real, fake)  # [N, M]
    in_real_ball = dist <= real_radii.unsqueeze(1)  # [N, M]: fake j inside real i's ball
    in_fake_ball = dist <= fake_radii.unsqueeze(0)  # [N, M]: real i inside fake j's ball
    return {
        "precision": in_real_ball.any(dim=0).double().mean().item(),
        "recall": in_fake_ball.any(dim=1).double().mean().item(),
        "density": in_real_ball.sum().item() / (k * len(fake)),
        "coverage": (dist.min(dim=1).values <= real_radii).double().mean().item(),
    }
