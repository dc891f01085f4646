"""Structured configs: the values a run accepts, validated where they enter.

Hydra composes YAML from conf/; `validate(cfg)` merges each group into its dataclass (types
checked by OmegaConf, ranges by `__post_init__`) and turns any problem into one `BenchError`
sentence naming the key, the value and what is expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bench.errors import BenchError, ConfigError

BUDGET_KINDS = ("time", "samples")
PROGRESS_MODES = ("auto", "bar", "lines", "none")
LOGGER_KINDS = ("csv", "wandb", "none")
WANDB_MODES = ("offline", "disabled", "online")


@dataclass
class BudgetConfig:
    kind: str = "time"  # time: seconds of training; samples: training images seen
    value: float = 180.0

    def __post_init__(self) -> None:
        if self.kind not in BUDGET_KINDS:
            raise ConfigError("budget.kind", self.kind, f"one of {', '.join(BUDGET_KINDS)}")
        if not self.value > 0:
            raise ConfigError("budget.value", self.value, "a positive number")


@dataclass
class DatasetConfig:
    name: str = "digits"
    split_seed: int = 0
    val_size: int = 150
    test_size: int = 450
    n_generated: int = 1000
    source_args: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("val_size", "test_size", "n_generated"):
            if getattr(self, key) < 1:
                raise ConfigError(f"dataset.{key}", getattr(self, key), "a positive integer")
        levels = self.source_args.get("levels")
        if levels is not None and levels < 2:
            raise ConfigError("dataset.source_args.levels", levels, "an integer >= 2")


@dataclass
class ModelConfig:
    name: str = "???"
    family: str = "???"
    batch_size: int = 64
    module: dict = field(default_factory=dict)
    net: Optional[Any] = None

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ConfigError("model.batch_size", self.batch_size, "a positive integer")
        lr = self.module.get("lr")
        if lr is not None and not lr > 0:
            raise ConfigError("model.module.lr", lr, "a positive number")


@dataclass
class LoggerConfig:
    kind: str = "csv"
    mode: str = "offline"
    project: str = "bench"

    def __post_init__(self) -> None:
        if self.kind not in LOGGER_KINDS:
            raise ConfigError("logger.kind", self.kind, f"one of {', '.join(LOGGER_KINDS)}")
        if self.mode not in WANDB_MODES:
            raise ConfigError("logger.mode", self.mode, f"one of {', '.join(WANDB_MODES)}")


@dataclass
class RunConfig:
    seed: int = 0
    threads: int = 1
    results_dir: str = "results"
    sweep: str = "runs"
    progress: str = "auto"
    concurrent_jobs: int = 1

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ConfigError("threads", self.threads, "a positive integer")
        if self.concurrent_jobs < 1:
            raise ConfigError("concurrent_jobs", self.concurrent_jobs, "a positive integer")
        if self.progress not in PROGRESS_MODES:
            raise ConfigError("progress", self.progress, f"one of {', '.join(PROGRESS_MODES)}")


#: Keys the run reads directly: deleting one (e.g. `~seed`) is a mistake, not a request for a default.
REQUIRED_KEYS = ("dataset.name", "model.name", "model.family", "budget.kind", "budget.value", "logger.kind",
                 *RunConfig.__dataclass_fields__)

_GROUPS = {"budget": BudgetConfig, "dataset": DatasetConfig, "model": ModelConfig, "logger": LoggerConfig}


def _checked(schema: type, node: Any, prefix: str) -> Any:
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), node))
    except OmegaConfBaseException as err:
        key = f"{prefix}{err.full_key}" if getattr(err, "full_key", None) else prefix.rstrip(".")
        reason = str(err).splitlines()[0]
        raise BenchError(f"{key}: {reason}") from None


def validate(cfg: DictConfig) -> None:
    """Raise one `BenchError` for the first invalid value in a composed run config."""
    for group, schema in _GROUPS.items():
        if group not in cfg:
            raise BenchError(f"config group '{group}' is missing: expected conf/{group}/*.yaml to be selected")
        _checked(schema, cfg[group], f"{group}.")
    for key in REQUIRED_KEYS:
        if OmegaConf.select(cfg, key, default=None, throw_on_missing=False) is None:
            raise BenchError(f"{key}: missing from the config (removed with ~{key}?); expected a value")
    run_keys = {k: cfg.get(k) for k in RunConfig.__dataclass_fields__ if k in cfg}
    _checked(RunConfig, run_keys, "")
