"""Shared test setup: one thread, a private cache, and tiny composed configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from bench.testing.cache import private_cache
from bench.config.choices import CONF_DIR

torch.set_num_threads(1)
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Reference classifiers for non-shipped datasets are cached here, never in the user's home."""
    with private_cache(tmp_path_factory.mktemp("bench-cache")):
        yield


def compose_config(overrides: list[str] | None = None):
    """The project's config as `bench-train` would compose it, with `overrides` applied."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("config", overrides=overrides or [])


def tiny_overrides(tmp_path: Path, *extra: str) -> list[str]:
    """A run small enough for the fast suite: procedural data, a samples-seen budget, one thread,
    validation after every epoch (a few per run, where the tests look for them)."""
    return [f"results_dir={tmp_path}", "dataset=procedural", "budget=samples", "budget.value=1024",
            "threads=1", "progress=none", "trainer.log_every_n_steps=5", "protocol.n_generated=128",
            "validation_every=null", *extra]
