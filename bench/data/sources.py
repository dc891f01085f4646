"""Image sources: functions returning every image of a dataset as uint8 levels plus labels.

Each returns a `SourceImages`. `digits` and `procedural` need no files; `mnist`,
`fashion_mnist` and `cifar10` read torchvision's layout under `dataset.root`
(`torchvision_sources.py`); `folder` decodes a directory of PNG/JPEG files (`image_folder.py`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from bench.core.errors import ConfigError
from bench.data.image_folder import folder
from bench.data.source_images import SourceImages
from bench.data.torchvision_sources import cifar10, fashion_mnist, mnist

SourceLoader = Callable[..., SourceImages]


def digits() -> SourceImages:
    """scikit-learn's embedded 8x8 handwritten digits: 1,797 images, 17 levels (0..16)."""
    from sklearn.datasets import load_digits  # noqa: PLC0415  (scikit-learn, heavy: only the digits source needs it)

    data = load_digits()
    images = torch.from_numpy(data.images.astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(data.target.astype(np.int64))
    return SourceImages(images, labels, levels=17, num_classes=10)


def procedural(n: int = 512, size: int = 8, levels: int = 4, seed: int = 1234) -> SourceImages:
    """Bars: each image holds one horizontal or vertical bar of a random level on a dark ground.

    Small, structured and instant to make — for fast tests of every family. Labels are the bar
    orientation (0 horizontal, 1 vertical).
    """
    if levels < 2:
        raise ConfigError("dataset.source_args.levels", levels, "an integer >= 2")
    if n < 1 or size < 1:
        raise ConfigError("dataset.source_args.n/size", (n, size), "positive integers")
    g = torch.Generator().manual_seed(seed)
    orientation = torch.randint(0, 2, (n,), generator=g)
    position = torch.randint(0, size, (n,), generator=g)
    level = torch.randint(1, levels, (n,), generator=g)
    coords = torch.arange(size)
    rows = (coords.view(1, size, 1) == position.view(n, 1, 1)).expand(n, size, size)
    cols = (coords.view(1, 1, size) == position.view(n, 1, 1)).expand(n, size, size)
    mask = torch.where(orientation.view(n, 1, 1) == 0, rows, cols)
    images = (mask * level.view(n, 1, 1)).to(torch.uint8).unsqueeze(1)
    return SourceImages(images, orientation.to(torch.int64), levels=levels, num_classes=2)


SOURCES: dict[str, SourceLoader] = {
    "digits": digits,
    "procedural": procedural,
    "mnist": mnist,
    "fashion_mnist": fashion_mnist,
    "cifar10": cifar10,
    "folder": folder,
}
