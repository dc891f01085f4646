"""One thread, and a private cache for reference classifiers trained during the tests."""

import pytest
import torch

from bench.testing.cache import private_cache

torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    with private_cache(tmp_path_factory.mktemp("bench-cache")):
        yield
