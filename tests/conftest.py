"""Shared test setup: one thread, a private cache, the datasets several test modules use, and the
`gpu` and `browser` markers' skips.

Helpers the tests import (composed configs, hand-made records, ...) are in `tests/helpers/`.
"""

from __future__ import annotations

import os

import pytest
import torch

from bench.data import ImageDataModule
from bench.testing.cache import private_cache
from tests.helpers.browser import find_chromium

torch.set_num_threads(1)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """`gpu` tests are skipped where torch sees no CUDA device, `browser` tests where no Chromium is
    installed, except under CI=true (see `pytest_runtest_call`)."""
    if item.get_closest_marker("gpu") and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device (torch.cuda.is_available() is False)")
    if item.get_closest_marker("browser") and find_chromium() is None and os.environ.get("CI") != "true":
        pytest.skip("Chromium is not installed (apt-get install chromium) — the HTML report is not browser-checked")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Under CI=true a `browser` test fails without Chromium, as a failure of the test itself: CI
    must check the report in a browser."""
    if item.get_closest_marker("browser") and find_chromium() is None:
        pytest.fail("CI=true requires Chromium for the browser test (apt-get install chromium)")


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
    return ImageDataModule(
        name="procedural", val_size=64, test_size=64, batch_size=32, source_args={"n": 512, "levels": 4}
    )


@pytest.fixture(scope="module")
def small_bars() -> ImageDataModule:
    """A smaller bars set for the autoregressive families: 256 images, 32 for validation and 32 for
    test, batches of 32."""
    return ImageDataModule(name="procedural", val_size=32, test_size=32, batch_size=32, source_args={"n": 256})
