"""The project's config as `bench-train` composes it, and overrides for a run small enough for the
fast suite."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir

from bench.config.choices import CONF_DIR


def compose_config(overrides: list[str] | None = None):
    """The project's config as `bench-train` would compose it, with `overrides` applied."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("config", overrides=overrides or [])


def tiny_overrides(tmp_path: Path, *extra: str) -> list[str]:
    """A run small enough for the fast suite: procedural data, a samples-seen budget, one thread,
    validation after every epoch (a few per run, where the tests look for them), 100 samples per
    validation for the selection statistic."""
    return [
        f"results_dir={tmp_path}",
        "dataset=procedural",
        "budget=samples",
        "budget.value=1024",
        "threads=1",
        "progress=none",
        "trainer.log_every_n_steps=5",
        "protocol.n_generated=128",
        "protocol.selection_n=100",
        "validation_every=null",
        *extra,
    ]
