"""The model configs the per-dataset presets use, composed as `bench-train` would (for benchmarks)."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from bench.config.choices import CONF_DIR


def preset_model_config(name: str) -> DictConfig:
    """The composed `model` node of `model=<name>` (e.g. `gpt_mnist`, `gan_cifar10`)."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("config", overrides=[f"model={name}"]).model
