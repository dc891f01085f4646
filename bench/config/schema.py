"""Structured configs: the values a run accepts, validated where they enter.

Hydra composes YAML from bench/conf/; `validate(cfg)` merges each group into its dataclass (types
checked by OmegaConf, ranges by `__post_init__`) and turns any problem into one `BenchError`
sentence naming the key, the value and what is expected.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bench.config.claims import settings_of_config
from bench.config.protocol import Protocol
from bench.core.errors import BenchError, ConfigError

BUDGET_KINDS = ("time", "samples", "flops")
PROGRESS_MODES = ("auto", "bar", "lines", "none")
#: The keys a logger config may leave to the run (`???`): filled in by `bench.run.loggers`.
LOGGER_RUN_KEYS = ("save_dir", "name", "config")
WANDB_MODES = ("offline", "disabled", "online")


@dataclass
class BudgetConfig:
    kind: str = "time"  # time: seconds of training; samples: training images seen; flops: training FLOPs
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
    val_size: float = 150  # a count (an integer >= 1) or a fraction in (0, 1) of the images
    test_size: float = 450
    source_args: dict = field(default_factory=dict)
    # options of the file-backed sources (bench/data/sources.py); None = not set, the source's default
    root: str | None = None
    download: bool | None = None
    levels: int | None = None
    size: int | None = None
    channels: int | None = None
    cache_dir: str | None = None
    # the protocol's N on this dataset: `protocol.n_generated` follows it unless set itself
    protocol_n_generated: int | None = None

    def __post_init__(self) -> None:
        for key in ("val_size", "test_size"):
            value = getattr(self, key)
            if not (0 < value < 1 or (value >= 1 and float(value).is_integer())):
                raise ConfigError(
                    f"dataset.{key}", value, "a count (an integer >= 1) or a fraction in (0, 1) of the images"
                )
        levels = self.source_args.get("levels")
        if levels is not None and levels < 2:
            raise ConfigError("dataset.source_args.levels", levels, "an integer >= 2")


@dataclass
class ModelConfig:
    name: str = "???"
    family: str = "???"
    batch_size: int = 64
    conditional: bool = False
    module: dict = field(default_factory=dict)
    net: Any | None = None
    #: how `bench-tune` found this config (trials, budget, statistic, seed); not hashed, not trained on
    tuning: dict | None = None

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ConfigError("model.batch_size", self.batch_size, "a positive integer")
        lr = self.module.get("lr")
        if lr is not None and not lr > 0:
            raise ConfigError("model.module.lr", lr, "a positive number")


@dataclass
class RunConfig:
    seed: int = 0
    threads: int = 1
    results_dir: str = "results"
    sweep: str = "runs"
    progress: str = "auto"
    concurrent_jobs: int = 1
    validation_every: float | None = None
    validate_only: bool = False

    def __post_init__(self) -> None:
        if self.validation_every is not None and not self.validation_every > 0:
            raise ConfigError(
                "validation_every",
                self.validation_every,
                "a positive number (x validation-set size, in training images) or null",
            )
        if self.threads < 1:
            raise ConfigError("threads", self.threads, "a positive integer")
        if self.concurrent_jobs < 1:
            raise ConfigError("concurrent_jobs", self.concurrent_jobs, "a positive integer")
        if self.progress not in PROGRESS_MODES:
            raise ConfigError("progress", self.progress, f"one of {', '.join(PROGRESS_MODES)}")


#: Keys the run reads directly: deleting one (e.g. `~seed`) is a mistake, not a request for a default.
REQUIRED_KEYS = (
    "dataset.name",
    "model.name",
    "model.family",
    "budget.kind",
    "budget.value",
    *(key for key in RunConfig.__dataclass_fields__ if key != "validation_every"),
)  # null is a value

_GROUPS = {"budget": BudgetConfig, "dataset": DatasetConfig, "model": ModelConfig}
#: Trainer arguments that the training code sets itself (`bench.run.fit`), so a config may not.
_TRAINER_OWNED = (
    "callbacks",
    "logger",
    "default_root_dir",
    "enable_progress_bar",
    "enable_model_summary",
    "num_sanity_val_steps",
    "use_distributed_sampler",
)
#: `trainer.*` keys that bench reads itself (`bench.run.fit`) and never passes to `pl.Trainer`
TRAINER_BENCH_KEYS = ("early_stopping",)
_TRAINER_CHOICES = {"accelerator": ("cpu", "gpu", "cuda", "mps", "auto"), "deterministic": (True, False, "warn")}


def _checked(schema: type, node: Any, prefix: str) -> Any:
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), node))
    except OmegaConfBaseException as err:
        key = f"{prefix}{err.full_key}" if getattr(err, "full_key", None) else prefix.rstrip(".")
        reason = str(err).splitlines()[0]
        raise BenchError(f"{key}: {reason}") from None


def _check_protocol(node: Any) -> None:
    """`protocol.*` through the protocol's own dataclass, and its quality-curve settings."""
    Protocol.from_config(node)
    curve = node.get("quality_curve") or {}
    every, n = curve.get("every_seconds"), curve.get("n_samples", 200)
    if every is not None and (isinstance(every, bool) or not isinstance(every, (int, float)) or not every > 0):
        raise ConfigError("protocol.quality_curve.every_seconds", every, "a positive number of seconds, or null")
    if every is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 2):
        raise ConfigError("protocol.quality_curve.n_samples", n, "an integer >= 2")


def _check_logger(node: Any) -> None:
    """`logger`: empty (no logger), or a `_target_` naming a Lightning logger class (`bench.run.loggers`)."""
    if not node:
        return
    target = node.get("_target_")
    if not isinstance(target, str) or "." not in target:
        raise ConfigError(
            "logger._target_",
            target,
            "the dotted path of a pytorch_lightning Logger class (see bench/conf/logger/*.yaml), or logger=none",
        )
    for key in node.keys():
        if OmegaConf.is_missing(node, key) and key not in LOGGER_RUN_KEYS:
            raise ConfigError(f"logger.{key}", "???", f"a value: the run fills in only {', '.join(LOGGER_RUN_KEYS)}")
    mode = node.get("mode")
    if target.endswith("WandbLogger") and mode not in WANDB_MODES:
        raise ConfigError("logger.mode", mode, f"one of {', '.join(WANDB_MODES)}")


def _check_callbacks(node: Any) -> None:
    """`callbacks`: name -> a config whose `_target_` is a Lightning callback class (`bench.run.callbacks`)."""
    for name, entry in (node or {}).items():
        target = entry.get("_target_") if isinstance(entry, DictConfig) else None
        if not isinstance(target, str) or "." not in target:
            raise ConfigError(
                f"callbacks.{name}._target_", target, "the dotted path of a pytorch_lightning Callback class"
            )


def _check_trainer(node: Any) -> None:
    """`trainer.*`: only `pl.Trainer` arguments the training code leaves to the config, sane values."""
    data = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    accepted = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self", *_TRAINER_OWNED}
    accepted |= set(TRAINER_BENCH_KEYS)
    _check_early_stopping(data.get("early_stopping"))
    for key, value in data.items():
        if key not in accepted:
            expected = (
                "set by the training code, not the config"
                if key in _TRAINER_OWNED
                else "an argument of pytorch_lightning.Trainer"
            )
            raise ConfigError(f"trainer.{key}", value, expected)
        if key in _TRAINER_CHOICES and value not in _TRAINER_CHOICES[key]:
            raise ConfigError(f"trainer.{key}", value, f"one of {', '.join(map(str, _TRAINER_CHOICES[key]))}")
    for key in ("log_every_n_steps", "check_val_every_n_epoch"):
        value = data.get(key, 1)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"trainer.{key}", value, "a positive integer")
    max_epochs = data.get("max_epochs", -1)
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < -1 or max_epochs == 0:
        raise ConfigError("trainer.max_epochs", max_epochs, "-1 (budgets stop training) or a positive integer")


def _check_early_stopping(node: Any) -> None:
    """`trainer.early_stopping`: absent, or `{patience: null | a positive number of validations}`."""
    if node is None:
        return
    if not isinstance(node, dict) or set(node) - {"patience"}:
        raise ConfigError("trainer.early_stopping", node, "{patience: null or a positive integer (validations)}")
    patience = node.get("patience")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
        raise ConfigError("trainer.early_stopping.patience", patience, "null (off) or a positive integer (validations)")


def validate(cfg: DictConfig) -> None:
    """Raise one `BenchError` for the first invalid value in a composed run config.

    Every group is checked here, before anything is built or trained.
    """
    for group, schema in _GROUPS.items():
        if group not in cfg:
            raise BenchError(f"config group '{group}' is missing: expected bench/conf/{group}/*.yaml to be selected")
        if group == "dataset" and "n_generated" in cfg.dataset:
            raise ConfigError(
                "dataset.n_generated",
                cfg.dataset.n_generated,
                "protocol.n_generated instead (an evaluation setting since protocol version 2)",
            )
        _checked(schema, cfg[group], f"{group}.")
    for key in REQUIRED_KEYS:
        if OmegaConf.select(cfg, key, default=None, throw_on_missing=False) is None:
            raise BenchError(f"{key}: missing from the config (removed with ~{key}?); expected a value")
    for group, check in (("protocol", _check_protocol), ("trainer", _check_trainer)):
        if group not in cfg:
            raise BenchError(f"config group '{group}' is missing: expected bench/conf/{group}/*.yaml to be selected")
        check(cfg[group])
    _check_logger(cfg.get("logger"))
    _check_callbacks(cfg.get("callbacks"))
    settings_of_config(cfg)  # one line for a malformed claim
    run_keys = {k: cfg.get(k) for k in RunConfig.__dataclass_fields__ if k in cfg}
    _checked(RunConfig, run_keys, "")
