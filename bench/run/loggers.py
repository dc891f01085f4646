"""The training logger a run's `logger` config asks for."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import Logger

from bench.run.metrics_log import ResumableCSVLogger


def make_logger(cfg: DictConfig, run_dir: Path, run_id: str) -> Logger | None:
    kind = cfg.logger.kind
    if kind == "csv":
        return ResumableCSVLogger(save_dir=str(run_dir), name="", version="")
    if kind == "wandb":
        from pytorch_lightning.loggers import WandbLogger

        return WandbLogger(project=cfg.logger.project, name=run_id, group=str(cfg.sweep), save_dir=str(run_dir),
                           mode=cfg.logger.mode, config=OmegaConf.to_container(cfg, resolve=True))
    return None


