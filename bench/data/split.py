"""Seeded train/val/test splits of an in-memory image set."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from bench.errors import ConfigError


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


def seeded_split(n: int, val_size: int, test_size: int, seed: int, where: str = "") -> Split:
    """Permute `range(n)` with `seed`; the first `test_size` are test, the next `val_size` val."""
    if val_size < 1 or test_size < 1 or val_size + test_size >= n:
        raise ConfigError(
            "dataset.val_size/test_size", (val_size, test_size),
            f"positive sizes that leave training images (the set has {n}{_at(where)})",
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test = perm[:test_size].sort().values
    val = perm[test_size : test_size + val_size].sort().values
    train = perm[test_size + val_size :].sort().values
    return Split(train=train, val=val, test=test)


def official_test_split(n: int, test_from: int, val_size: int, test_size: int, seed: int, where: str = "") -> Split:
    """Keep a dataset's own test split (`test_from..n-1`) as test; carve validation from the rest.

    Validation is `val_size` indices of `0..test_from-1` drawn with `seed`. A `test_size` below the
    official count takes a seeded subset of it (for quick runs); the full split is the default.
    """
    n_test = n - test_from
    if not 1 <= test_size <= n_test:
        raise ConfigError("dataset.test_size", test_size, f"1..{n_test}, the official test split's size{_at(where)}")
    if not 1 <= val_size < test_from:
        raise ConfigError("dataset.val_size", val_size,
                          f"a positive size that leaves training images (the official train split has {test_from}"
                          f"{_at(where)})")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(test_from, generator=g)
    test = torch.arange(test_from, n)
    if test_size < n_test:
        test = test[torch.randperm(n_test, generator=g)[:test_size]]
    return Split(train=perm[val_size:].sort().values, val=perm[:val_size].sort().values, test=test.sort().values)


def _at(where: str) -> str:
    return f" at {where}" if where else ""
