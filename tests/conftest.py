"""Shared test setup: one thread and a private cache. Helpers the tests import are in `tests/helpers/`."""

from __future__ import annotations

import pytest
import torch

from bench.testing.cache import private_cache

torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Reference classifiers for non-shipped datasets are cached here, never in the user's home."""
    with private_cache(tmp_path_factory.mktemp("bench-cache")):
        yield
