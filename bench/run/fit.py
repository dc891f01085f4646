"""Fit a module within its budget and select the checkpoints that get evaluated: one rule per table.

The sample-quality table scores every trained run at the checkpoint with the best validation
sample quality (`quality_monitor`, logged by `bench.evaluate.validation_quality`); the likelihood
table scores a likelihood family at its best validation bits/dim (`module.selection_metric`).
Without a quality monitor the sample metrics come from the final weights. Optional early stopping
(`trainer.early_stopping.patience`, counted in validations) watches the quality monitor.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import Logger

from bench.core.errors import BenchError
from bench.models.base import GenerativeModule
from bench.run.accelerator import trainer_settings
from bench.run.budget import TrainingBudget
from bench.run.checkpoints import AtomicCheckpointIO, load_checkpoint, set_aside
from bench.run.metrics_log import FlushLogsOnCheckpoint, ResumableCSVLogger
from bench.run.rng_state import RngState
from bench.run.validation_history import ValidationHistory

#: A `last.ckpt` is written at least this often so a killed run can resume.
LAST_CHECKPOINT_EVERY = timedelta(seconds=30)


@dataclass
class FitOutcome:
    stopped_by: str
    samples_seen: int
    optimizer_steps: int
    epochs: int
    train_seconds: float
    eval_seconds_during_training: float = 0.0
    train_flops: float | None = None
    flops_per_train_image: float | None = None
    checkpoint: dict = field(default_factory=dict)
    curves: dict = field(default_factory=dict)
    divergence: dict | None = None
    divergence_message: str | None = None
    #: the weights the likelihood table scores (best validation bits/dim), when they differ from
    #: those loaded into the module (the sample-quality table's); None otherwise
    likelihood_state: dict | None = None


def fit(
    module: GenerativeModule,
    datamodule: pl.LightningDataModule,
    cfg: DictConfig,
    run_dir: Path,
    logger: Logger | None,
    extra_callbacks: list[pl.Callback],
    enable_progress_bar: bool,
    owns_run_dir: bool = True,
    quality_monitor: str | None = None,
    flops_per_image: float | None = None,
) -> FitOutcome:
    """Train `module` until the budget is spent (resuming from `last.ckpt` if present), then load
    the sample-quality table's selected weights into it (`quality_monitor`: the validation metric
    that picks them, logged by one of `extra_callbacks`; None: the final weights).

    Under DDP every rank calls this; only the one that `owns_run_dir` (rank 0) may change files in
    `run_dir` (Lightning writes checkpoints from rank 0 only). The process group is closed before
    returning, so what follows (rank 0's evaluation) runs in one process and never waits for a rank.
    `flops_per_image` (FLOPs per training image, counted before training) drives a `flops` budget
    and puts training FLOPs beside samples seen in the record and the quality curve.
    """
    budget = TrainingBudget(cfg.budget.kind, cfg.budget.value, flops_per_image)
    history = ValidationHistory()
    callbacks: list[pl.Callback] = [budget, *extra_callbacks, history, FlushLogsOnCheckpoint()]
    callbacks += [] if any(isinstance(cb, RngState) for cb in callbacks) else [RngState()]  # RNG in last.ckpt
    ckpt_dir = run_dir / "checkpoints"
    callbacks.append(
        ModelCheckpoint(
            dirpath=ckpt_dir,
            filename="last",
            monitor=None,
            save_top_k=1,
            train_time_interval=LAST_CHECKPOINT_EVERY,
            enable_version_counter=False,
        )
    )
    monitors = selection_monitors(module, quality_monitor)
    best = {table: _best_checkpoint(ckpt_dir, monitor) for table, monitor in monitors.items()}
    callbacks += list(best.values())
    stopper = early_stopping(cfg, monitors)
    callbacks += [stopper] if stopper is not None else []
    trainer = _trainer(module, datamodule, cfg, run_dir, logger, callbacks, enable_progress_bar, bool(monitors))
    last = ckpt_dir / "last.ckpt"
    resume_from = resumable_checkpoint(last, may_set_aside=owns_run_dir)
    if isinstance(logger, ResumableCSVLogger):
        logger.keep_rows_before = logged_steps(resume_from)
    trainer.fit(
        module, datamodule=datamodule, ckpt_path=str(last) if resume_from is not None else None, weights_only=True
    )
    trainer.save_checkpoint(last)
    checkpoint, likelihood_state = _load_selected(module, best, budget, trainer, run_dir, history)
    module.to(trainer.strategy.root_device)  # Lightning's teardown moved it to the CPU: evaluate where it trained
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()  # metrics (torchmetrics) would otherwise gather across ranks
    curves, eval_seconds = {}, 0.0
    for cb in extra_callbacks:
        if hasattr(cb, "curve"):
            curves["quality"] = cb.curve
        eval_seconds += getattr(cb, "eval_seconds", 0.0)  # the quality curve's and validation quality's
    if history.rows:
        curves["validation"] = history.rows
    stopped_early = stopper is not None and stopper.wait_count >= stopper.patience
    return FitOutcome(
        stopped_by=budget.stopped_by or ("early_stopping" if stopped_early else "max_epochs"),
        likelihood_state=likelihood_state,
        divergence=budget.divergence,
        divergence_message=budget.divergence_message() if budget.divergence else None,
        samples_seen=budget.samples_seen,
        optimizer_steps=trainer.global_step,
        epochs=trainer.current_epoch,
        train_seconds=budget.train_seconds,
        eval_seconds_during_training=eval_seconds,
        train_flops=budget.train_flops,
        flops_per_train_image=budget.flops_per_image,
        checkpoint=checkpoint,
        curves=curves,
    )


def _trainer(
    module: GenerativeModule,
    datamodule: pl.LightningDataModule,
    cfg: DictConfig,
    run_dir: Path,
    logger: Logger | None,
    callbacks: list[pl.Callback],
    enable_progress_bar: bool,
    validates: bool,
) -> pl.Trainer:
    """The Trainer of a run: the config's settings, with what the training code owns set here."""
    trainer_kwargs: dict[str, Any] = trainer_settings(cfg.trainer)  # precision the device supports
    if not validates:
        trainer_kwargs["limit_val_batches"] = 0
    else:
        trainer_kwargs.update(validation_cadence(cfg.get("validation_every"), datamodule))
    # the datamodule shards training batches across ranks itself (equal batches on every rank)
    trainer_kwargs["use_distributed_sampler"] = False
    if "strategy" in trainer_kwargs:
        trainer_kwargs["strategy"] = ddp_strategy(str(trainer_kwargs["strategy"]), module)
    return pl.Trainer(
        **trainer_kwargs,
        callbacks=callbacks,
        logger=logger if logger is not None else False,
        default_root_dir=str(run_dir),
        enable_progress_bar=enable_progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        plugins=[AtomicCheckpointIO()],
    )


def selection_monitors(module: GenerativeModule, quality_monitor: str | None) -> dict[str, str]:
    """Table -> the validation metric that picks its checkpoint (lower is better): `quality` for
    the sample metrics, `likelihood` for bits/dim (likelihood families only)."""
    monitors = {"quality": quality_monitor} if quality_monitor else {}
    if module.selection_metric is not None:
        monitors["likelihood"] = module.selection_metric
    return monitors


def _best_checkpoint(ckpt_dir: Path, monitor: str) -> ModelCheckpoint:
    return ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best_" + monitor.split("/")[-1],  # best_fid.ckpt, best_bpd.ckpt
        monitor=monitor,
        mode="min",
        save_top_k=1,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )


def early_stopping(cfg: DictConfig, monitors: dict[str, str]) -> EarlyStopping | None:
    """Lightning's `EarlyStopping` on the first table's selection metric when
    `trainer.early_stopping.patience` (in validations) is set; None when it is null (the default)."""
    patience = OmegaConf.select(cfg, "trainer.early_stopping.patience", default=None)
    if patience is None or not monitors:
        return None
    return EarlyStopping(monitor=next(iter(monitors.values())), mode="min", patience=int(patience), verbose=False)


def _load_selected(
    module: GenerativeModule,
    best: dict[str, ModelCheckpoint],
    budget: TrainingBudget,
    trainer: pl.Trainer,
    run_dir: Path,
    history: ValidationHistory,
) -> tuple[dict, dict | None]:
    """Load the sample-quality table's weights into `module` (its best checkpoint, else the final
    weights); return the record's `checkpoint` section and the likelihood table's weights.

    `checkpoint` says, per table, which file was scored, where in training it was taken, its
    selection value, and the other validation metrics logged at the same step."""
    final = {
        "selection": "final weights",
        "selected": "checkpoints/last.ckpt",
        "selected_at": {
            "step": trainer.global_step,
            "samples_seen": budget.samples_seen,
            "train_seconds": budget.train_seconds,
            "train_flops": budget.train_flops,
            "value": None,
            "validation": _metrics_of(history.at_step(trainer.global_step)),
        },
    }
    chosen: dict[str, dict] = {}
    states: dict[str, dict] = {}
    for table, callback in best.items():
        if not callback.best_model_path:
            continue
        state = load_checkpoint(Path(callback.best_model_path), map_location=module.device)
        at = state.get("callbacks", {}).get(budget.state_key, {})
        step = state.get("global_step")
        states[table] = state["state_dict"]
        chosen[table] = {
            "selection": f"best {callback.monitor} (validation)",
            "selected": os.path.relpath(callback.best_model_path, run_dir),
            "selected_at": {
                "step": step,
                "samples_seen": at.get("samples_seen"),
                "train_seconds": at.get("train_seconds"),
                "train_flops": _times(at.get("samples_seen"), budget.flops_per_image),
                "value": float(callback.best_model_score),
                "validation": _metrics_of(history.at_step(step)),
            },
        }
    checkpoint = {"last": "checkpoints/last.ckpt", **chosen.get("quality", final)}
    if "quality" in states:
        module.load_state_dict(states["quality"])
    likelihood_state = None
    if "likelihood" in best:
        checkpoint["likelihood"] = chosen.get("likelihood", final)
        if checkpoint["likelihood"]["selected_at"]["step"] != checkpoint["selected_at"]["step"]:
            likelihood_state = states.get("likelihood")
            if likelihood_state is None:  # no validation ran: the final weights, which `module` no longer holds
                likelihood_state = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"]
    return checkpoint, likelihood_state


def _times(samples: int | None, flops_per_image: float | None) -> float | None:
    return None if samples is None or flops_per_image is None else samples * flops_per_image


def _metrics_of(row: dict) -> dict[str, float | None]:
    return {name: value for name, value in row.items() if name.startswith("val/")}


def validation_cadence(every: float | None, datamodule: pl.LightningDataModule) -> dict[str, Any]:
    """Trainer arguments that validate after every `every` x |validation split| training images
    (counted in batches across epochs); none (the trainer config's per-epoch cadence) for null.

    Tied to the validation set's size, validation costs the same share of training on 8x8 digits,
    whose epochs are a few dozen batches, as on a dataset whose epochs are thousands."""
    if every is None:
        return {}
    images = float(every) * len(datamodule.val_images)
    return {"val_check_interval": max(1, math.ceil(images / datamodule.batch_size)), "check_val_every_n_epoch": None}


def ddp_strategy(requested: str, module: GenerativeModule) -> str:
    """The strategy to train `module` with: plain `ddp` becomes `ddp_find_unused_parameters_true`
    for modules that leave parameters without gradients in a backward pass (GANs); DDP would
    otherwise stop at the first step. The config (and the run's hash) keep what was asked."""
    if requested == "ddp" and module.has_unused_parameters:
        return "ddp_find_unused_parameters_true"
    return requested


def resumable_checkpoint(last: Path, may_set_aside: bool = True) -> dict | None:
    """The checkpoint a killed run resumes from, checked with `weights_only=True` before Lightning
    sees it; an unreadable one is renamed aside (named in a warning; by the folder's owner only) and
    the run starts over."""
    if not last.exists():
        return None
    try:
        return load_checkpoint(last)
    except BenchError as err:
        if not may_set_aside:
            return None
        aside = set_aside(last)
        print(f"warning: {err}; renamed it to {aside.name} and training starts over", file=sys.stderr, flush=True)
        return None


def logged_steps(checkpoint: dict | None) -> int:
    """The logger's step counter stored in `checkpoint` (Lightning logs by batches that stepped,
    not by optimizer steps: a GAN makes two per batch); 0 for a fresh start."""
    if checkpoint is None:
        return 0
    loop = (checkpoint.get("loops") or {}).get("fit_loop") or {}
    return int((loop.get("epoch_loop.state_dict") or {}).get("_batches_that_stepped", checkpoint.get("global_step", 0)))
