"""Seeded train/val/test splits of an in-memory image set.

`dataset.val_size` and `dataset.test_size` are each a count (an integer >= 1) or a fraction in
(0, 1) of the images the part is drawn from, rounded half up and at least 1: a fraction fits a
folder of any size, a count pins the same images whatever else is in the set.
"""

from __future__ import annotations

import hashlib
import numbers
from dataclasses import dataclass

import torch

from bench.core.errors import ConfigError


@dataclass(frozen=True)
class Split:
    """Index tensors of one seeded split, with a hash that pins them."""

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor

    def sha256(self) -> str:
        h = hashlib.sha256()
        for part in (self.train, self.val, self.test):
            h.update(part.to(torch.int64).numpy().tobytes())
            h.update(b"|")
        return h.hexdigest()


SIZE_EXPECTED = "a count (an integer >= 1) or a fraction in (0, 1) of the images"


def split_count(value: float, pool: int, key: str) -> int:
    """`value` as a number of images: a count as it is, a fraction of `pool` rounded half up (>= 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(key, value, SIZE_EXPECTED)
    if 0 < value < 1:
        return max(1, int(value * pool + 0.5))
    if value >= 1 and float(value).is_integer():
        return int(value)
    raise ConfigError(key, value, SIZE_EXPECTED)


def seeded_split(n: int, val_size: float, test_size: float, seed: int, where: str = "") -> Split:
    """Permute `range(n)` with `seed`; the first `test_size` are test, the next `val_size` val.

    Either size may be a fraction of `n` (`split_count`); integer counts give the splits they always gave.
    """
    given = (val_size, test_size)
    val_size = split_count(val_size, n, "dataset.val_size")
    test_size = split_count(test_size, n, "dataset.test_size")
    if val_size + test_size >= n:
        counted = "" if given == (val_size, test_size) else f", which gives {val_size} val + {test_size} test"
        hint = (
            "a split needs at least 3 images, one per part"
            if n < 3
            else "fractions such as 0.1 and 0.2 fit a set of any size"
        )
        raise ConfigError(
            "dataset.val_size/test_size",
            given,
            f"sizes that leave training images (the set has {n} image(s){_at(where)}{counted}; {hint})",
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test = perm[:test_size].sort().values
    val = perm[test_size : test_size + val_size].sort().values
    train = perm[test_size + val_size :].sort().values
    return Split(train=train, val=val, test=test)


def official_test_split(n: int, test_from: int, val_size: float, test_size: float, seed: int, where: str = "") -> Split:
    """Keep a dataset's own test split (`test_from..n-1`) as test; carve validation from the rest.

    Validation is `val_size` indices of `0..test_from-1` drawn with `seed`. A `test_size` below the
    official count takes a seeded subset of it (for quick runs); the full split is the default.
    As fractions, `val_size` is of the official training images and `test_size` of the official test split.
    """
    n_test = n - test_from
    val_size = split_count(val_size, test_from, "dataset.val_size")
    test_size = split_count(test_size, n_test, "dataset.test_size")
    if not 1 <= test_size <= n_test:
        raise ConfigError("dataset.test_size", test_size, f"1..{n_test}, the official test split's size{_at(where)}")
    if not 1 <= val_size < test_from:
        raise ConfigError(
            "dataset.val_size",
            val_size,
            f"a positive size that leaves training images (the official train split has {test_from}{_at(where)})",
        )
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(test_from, generator=g)
    test = torch.arange(test_from, n)
    if test_size < n_test:
        test = test[torch.randperm(n_test, generator=g)[:test_size]]
    return Split(train=perm[val_size:].sort().values, val=perm[:val_size].sort().values, test=test.sort().values)


def _at(where: str) -> str:
    return f" at {where}" if where else ""
