"""What every source returns: all images of a dataset as uint8 levels, and how to split them."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.core.errors import ConfigError


@dataclass(frozen=True)
class SourceImages:
    """`images` uint8 `[N, C, H, W]` in `0..levels-1`, `labels` int64 `[N]` (zeros when unlabelled).

    `test_from` is set by datasets that come with an official test split: `images[test_from:]`
    are that split, and validation is carved from `images[:test_from]` only. `where` names the
    files the images came from, for messages.
    """

    images: torch.Tensor
    labels: torch.Tensor
    levels: int
    num_classes: int
    test_from: int | None = None
    where: str = ""


def reduce_levels(images: torch.Tensor, levels: int, key: str = "dataset.levels") -> torch.Tensor:
    """uint8 `[N, C, H, W]` on 256 levels -> `levels` equal-width bins: `value * levels // 256`.

    With `levels=2` a pixel becomes 1 when its 0..255 value is >= 128 (a fixed threshold).
    """
    if not isinstance(levels, int) or not 2 <= levels <= 256:
        raise ConfigError(key, levels, "an integer from 2 to 256")
    if levels == 256:
        return images
    return (images.to(torch.int32) * levels // 256).to(torch.uint8)
