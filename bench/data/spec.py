"""What a dataset is: its shape, its discrete levels and its split; plus the one quantizer.

Every family returns samples through `quantize`, and real images go through `to_unit`, so
real and generated images take the identical path into the metrics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from bench.core.errors import ConfigError


@dataclass(frozen=True)
class DatasetSpec:
    """Shape and discretization of a dataset, with the split that was drawn from it."""

    name: str
    channels: int
    height: int
    width: int
    levels: int  # pixel values are integers 0 .. levels-1
    split_seed: int
    train_size: int
    val_size: int
    test_size: int
    num_classes: int = 0

    def __post_init__(self) -> None:
        if self.levels < 2:
            raise ConfigError("dataset.levels", self.levels, "an integer >= 2")
        for key in ("channels", "height", "width"):
            if getattr(self, key) < 1:
                raise ConfigError(f"dataset.{key}", getattr(self, key), "a positive integer")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    @property
    def dims(self) -> int:
        """Number of scalar dimensions per image (for bits/dim)."""
        return self.channels * self.height * self.width

    def to_dict(self) -> dict:
        return asdict(self)


def quantize(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Map generator output to the dataset's discrete levels as uint8 `[N, C, H, W]`.

    Integer tensors are level indices (categorical families) and are clamped to `0..levels-1`;
    floating tensors are intensities in `[0, 1]` (continuous families) and are rounded to the
    nearest level.
    """
    if x.dtype.is_floating_point:
        x = torch.round(x.clamp(0.0, 1.0) * (levels - 1))
    return x.clamp(0, levels - 1).to(torch.uint8)


def to_unit(x: torch.Tensor, levels: int) -> torch.Tensor:
    """uint8 levels `[N, C, H, W]` -> float32 intensities in `[0, 1]`."""
    return x.to(torch.float32) / (levels - 1)
