"""Memorization: how many generated images sit closer to a training image than real data does.

The threshold is the 5th percentile of validation->train nearest-neighbour distances (L2 on
`to_unit` pixels), so held-out real images score about 0.05 by construction and a model that
copies its training set scores about 1.
"""

from __future__ import annotations

import torch

from bench.core.errors import BenchError
from bench.data.spec import to_unit

QUANTILE = 0.05
_CHUNK = 2048


def nearest_distances(images: torch.Tensor, train: torch.Tensor, levels: int) -> torch.Tensor:
    """L2 pixel distance from each uint8 image `[N, C, H, W]` to its nearest training image, `[N]`."""
    t = to_unit(train, levels).flatten(1).double()
    x = to_unit(images, levels).flatten(1).double()
    # chunks bound the [chunk, N_train] distance matrix for larger datasets
    return torch.cat([torch.cdist(x[s : s + _CHUNK], t).min(dim=1).values for s in range(0, len(x), _CHUNK)])


def memorization_threshold(val: torch.Tensor, train: torch.Tensor, levels: int) -> float:
    """5th percentile of validation->train nearest-neighbour distances."""
    if len(val) == 0 or len(train) == 0:
        raise BenchError("memorization: expected non-empty validation and train splits")
    return torch.quantile(nearest_distances(val, train, levels), QUANTILE).item()
