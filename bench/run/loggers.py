"""The training logger a run's `logger` config builds: its `_target_` class with the config's keys.

A logger config (`bench/conf/logger/*.yaml`, or the user's `conf/logger/`) names any Lightning
`Logger` class; a key set to `???` is filled in by bench with what only the run knows:
`save_dir` (the run folder), `name` (its folder name) and `config` (the resolved run config).
`logger=none` (an empty config) logs nothing. A new logger is one YAML file.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import Logger, WandbLogger

from bench.config.schema import LOGGER_RUN_KEYS
from bench.run.targets import build_target


def make_logger(cfg: DictConfig, run_dir: Path) -> Logger | None:
    """The logger `cfg.logger` describes for the run in `run_dir`, or None for `logger=none`."""
    node = cfg.get("logger")
    if not node or node.get("_target_") is None:
        return None
    known = {"save_dir": str(run_dir), "name": run_dir.name, "config": OmegaConf.to_container(cfg, resolve=True)}
    filled = {key: known[key] for key in LOGGER_RUN_KEYS if key in node.keys() and OmegaConf.is_missing(node, key)}
    given = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if k not in filled}
    return build_target(given, "logger", Logger, **filled)


def close_logger(logger: Logger | None) -> None:
    """End what a logger started outside the run folder (a wandb run), whether the run ended well or not."""
    if isinstance(logger, WandbLogger):
        import wandb  # noqa: PLC0415  (optional dependency: only a wandb logger needs it)

        wandb.finish()
