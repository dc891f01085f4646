"""The training logger a run's `logger` config builds: its `_target_` class with the config's keys.

A logger config (`bench/conf/logger/*.yaml`, or the user's `conf/logger/`) names any Lightning
`Logger` class; a key set to `???` is filled in by bench with what only the run knows:
`save_dir` (the run folder), `name` (its folder name) and `config` (the resolved run config).
`logger=none` (an empty config) logs nothing. A new logger is one YAML file.
"""

from __future__ import annotations

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import Logger, WandbLogger

from bench.core.errors import BenchError

#: The keys a logger config may leave to the run (`???`).
RUN_KEYS = ("save_dir", "name", "config")


def make_logger(cfg: DictConfig, run_dir: Path) -> Logger | None:
    """The logger `cfg.logger` describes for the run in `run_dir`, or None for `logger=none`."""
    node = cfg.get("logger")
    if not node or node.get("_target_") is None:
        return None
    known = {"save_dir": str(run_dir), "name": run_dir.name, "config": OmegaConf.to_container(cfg, resolve=True)}
    filled = {key: known[key] for key in RUN_KEYS if key in node.keys() and OmegaConf.is_missing(node, key)}
    given = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if k not in filled}
    try:
        # partial, then called: the run's config (which names networks) is passed as data, never instantiated
        logger = instantiate(given, _partial_=True)(**filled)
    except Exception as err:  # a class that does not exist or does not take these keys: the config's mistake
        cause = err.__cause__ or err
        raise BenchError(
            f"logger._target_={node._target_}: could not build it ({type(cause).__name__}: "
            f"{str(cause).splitlines()[0] if str(cause) else ''})"
        ) from None
    if not isinstance(logger, Logger):
        raise BenchError(f"logger._target_={node._target_}: expected a pytorch_lightning Logger class")
    return logger


def close_logger(logger: Logger | None) -> None:
    """End what a logger started outside the run folder (a wandb run), whether the run ended well or not."""
    if isinstance(logger, WandbLogger):
        import wandb  # noqa: PLC0415  (optional dependency: only a wandb logger needs it)

        wandb.finish()
