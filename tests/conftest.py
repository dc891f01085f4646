"""Shared test setup: one thread, a private cache, and the datasets several test modules use.

Helpers the tests import (composed configs, hand-made records, ...) are in `tests/helpers/`.
"""

from __future__ import annotations

import pytest
import torch

from bench.data import ImageDataModule
from bench.testing.cache import private_cache

torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Reference classifiers for non-shipped datasets are cached here, never in the user's home."""
    with private_cache(tmp_path_factory.mktemp("bench-cache")):
        yield


@pytest.fixture(scope="module")
def digits() -> ImageDataModule:
    """The shipped digits set (8x8, 17 levels, 10 classes) with its default splits."""
    return ImageDataModule(name="digits")


@pytest.fixture(scope="module")
def bars() -> ImageDataModule:
    """The procedural bars set: 512 images of 8x8 with 4 levels, 64 for validation and 64 for test,
    batches of 64 (the set `tests.helpers.cli_runs.DATASET` names in a run's config)."""
    return ImageDataModule(name="procedural", val_size=64, test_size=64, source_args={"n": 512, "levels": 4})


@pytest.fixture(scope="module")
def bars_batch_32() -> ImageDataModule:
    """`bars` in batches of 32 (more optimizer steps per epoch)."""
    return ImageDataModule(name="procedural", val_size=64, test_size=64, batch_size=32,
                           source_args={"n": 512, "levels": 4})


@pytest.fixture(scope="module")
def small_bars() -> ImageDataModule:
    """A smaller bars set for the autoregressive families: 256 images, 32 for validation and 32 for
    test, batches of 32."""
    return ImageDataModule(name="procedural", val_size=32, test_size=32, batch_size=32, source_args={"n": 256})
