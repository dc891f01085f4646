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


def seeded_split(n: int, val_size: int, test_size: int, seed: int) -> Split:
    """Permute `range(n)` with `seed`; the first `test_size` are test, the next `val_size` val."""
    if val_size < 1 or test_size < 1 or val_size + test_size >= n:
        raise ConfigError(
            "dataset.val_size/test_size", (val_size, test_size),
            f"positive sizes that leave training images (the set has {n})",
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test = perm[:test_size].sort().values
    val = perm[test_size : test_size + val_size].sort().values
    train = perm[test_size + val_size :].sort().values
    return Split(train=train, val=val, test=test)
