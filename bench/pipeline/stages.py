"""The stages of one run: build the data and model, train within the budget, evaluate, fill the record.

`run_stages` is what the process that owns a run folder does; `train_only` is what the other
ranks of a distributed run do (train, nothing else). Errors never escape `run_stages`: each
becomes the record's status and message, and the record is written whatever happened.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from bench.core.errors import BenchError, os_error_line
from bench.data import ImageDataModule
from bench.evaluate.cost.timing import TIMING_LOCK, flops
from bench.evaluate.quality_curve import QualityCurve
from bench.evaluate.score import evaluate_module
from bench.evaluate.validation_quality import ValidationQuality
from bench.models.baselines import fit_on
from bench.models.build import build_model
from bench.pipeline.run_record import completed_record, headline, new_record, save_log, save_record
from bench.run.accelerator import effective_precision
from bench.run.callbacks import make_callbacks
from bench.run.environment import environment
from bench.run.fit import fit
from bench.run.loggers import close_logger, make_logger
from bench.run.phase_times import PhaseTimes, phase_seconds
from bench.run.progress import make_progress
from bench.run.rng_state import RngState

TRAINING_KEYS = (
    "samples_seen",
    "optimizer_steps",
    "epochs",
    "train_seconds",
    "eval_seconds_during_training",
    "train_flops",
    "flops_per_train_image",
)


def build(cfg: DictConfig) -> tuple[ImageDataModule, pl.LightningModule]:
    """The seeded data module and model of `cfg`; a network the config cannot build is a `BenchError`."""
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    dataset_kwargs = OmegaConf.to_container(cfg.dataset, resolve=True)
    datamodule = ImageDataModule(batch_size=int(cfg.model.batch_size), shuffle_seed=int(cfg.seed), **dataset_kwargs)
    return datamodule, build_model(cfg.model, datamodule.spec)


def run_stages(cfg: DictConfig, run_dir: Path, built: tuple | Exception) -> dict:
    """Train and evaluate `built` (or record why it could not be built) and write the run's record."""
    record = new_record(cfg, run_dir)
    logger, started = None, time.perf_counter()
    try:
        if isinstance(built, Exception):
            raise built
        datamodule, module = built
        _describe_setup(record, cfg, datamodule)
        n_generated = scored_n(cfg, datamodule, run_dir.name)
        if getattr(module, "fits_in_closed_form", False):
            _fit_closed_form(record, module, datamodule)
            phases, likelihood_state = None, None
        else:
            logger = make_logger(cfg, run_dir)
            phases, likelihood_state = _train(record, cfg, run_dir, module, datamodule, logger, started)
            if record["status"] == "diverged":
                return record
        if cfg.validate_only:
            record.update(status="validated")  # a tuning trial: the test split stays unread
            return record
        _evaluate(record, cfg, run_dir, module, datamodule, n_generated, phases, likelihood_state)
        record.update(status="completed")
    except BenchError as err:
        record.update(status="failed", message=str(err))
        print(f"error: {run_dir.name}: {err}", file=sys.stderr, flush=True)
    except (KeyboardInterrupt, SystemExit):  # Lightning ends a Ctrl+C inside fit with SystemExit(1)
        record.update(status="interrupted", message="interrupted by the user")
        record["budget"]["stopped_by"] = "interrupted"
        raise
    except OSError as err:  # a full disk or a read-only folder: say which file, keep what was written
        record.update(status="failed", message=os_error_line(err))
        print(f"error: {run_dir.name}: {record['message']}", file=sys.stderr, flush=True)
    except Exception as err:  # a failing job must not take the sweep down with it
        record.update(status="failed", message=f"{type(err).__name__}: {err}")
        save_log(run_dir / "error.log", traceback.format_exc())
        print(
            f"error: {run_dir.name} failed: {record['message']} (traceback in {run_dir / 'error.log'})",
            file=sys.stderr,
            flush=True,
        )
    finally:
        close_logger(logger)
        save_record(run_dir, record)
        if cfg.progress != "none":
            print(headline(record), flush=True)
    return record


def _describe_setup(record: dict, cfg: DictConfig, datamodule: ImageDataModule) -> None:
    """What the record says about the machine and the data before training starts."""
    device = torch.device("cuda" if cfg.trainer.accelerator == "gpu" else "cpu")
    record["environment"] = environment(device, int(cfg.concurrent_jobs), family=cfg.model.family)
    record["dataset_spec"] = {**datamodule.spec.to_dict(), "split_sha256": datamodule.split.sha256()}
    record["environment"]["precision"] = effective_precision(cfg.trainer)  # may differ from the config's


def _fit_closed_form(record: dict, module, datamodule: ImageDataModule) -> None:
    """A baseline fitted in one pass over the training split: no optimizer, no checkpoint."""
    started = time.perf_counter()
    fit_on(module, datamodule)
    record["budget"]["stopped_by"] = "closed_form"
    record["training"] = {
        "samples_seen": len(datamodule.train_images),
        "optimizer_steps": 0,
        "epochs": 1,
        "train_seconds": time.perf_counter() - started,
        "eval_seconds_during_training": 0.0,
    }


def _train(
    record: dict, cfg: DictConfig, run_dir: Path, module, datamodule: ImageDataModule, logger, started: float
) -> tuple[PhaseTimes, dict | None]:
    """Fit within the budget (`bench.run.fit`) and record how training went; returns its phase times
    and the likelihood table's weights where they differ from the module's (`FitOutcome.likelihood_state`)."""
    callbacks, enable_bar = make_progress(mode=cfg.progress, run_name=run_dir.name)
    callbacks += [*quality_curve(cfg, datamodule), rng := RngState(), phases := PhaseTimes(started)]
    callbacks += [quality := ValidationQuality(datamodule, cfg.protocol), *make_callbacks(cfg)]
    outcome = fit(
        module,
        datamodule,
        cfg,
        run_dir,
        logger,
        callbacks,
        enable_bar,
        quality_monitor=quality.monitor,
        flops_per_image=training_flops(cfg, module, datamodule),
    )
    record["budget"]["stopped_by"], record["resumed"] = outcome.stopped_by, rng.resumed
    record["training"] = {key: getattr(outcome, key) for key in TRAINING_KEYS}
    record["checkpoint"], record["curves"] = outcome.checkpoint, outcome.curves
    record["paths"]["metrics_csv"] = "metrics.csv" if (run_dir / "metrics.csv").is_file() else None
    if outcome.stopped_by == "diverged":
        record.update(status="diverged", message=outcome.divergence_message, divergence=outcome.divergence)
    return phases, outcome.likelihood_state


def _evaluate(
    record: dict,
    cfg: DictConfig,
    run_dir: Path,
    module,
    datamodule: ImageDataModule,
    n_generated: int,
    phases: PhaseTimes | None,
    likelihood_state: dict | None = None,
) -> None:
    """Score the trained model under the protocol (`bench.evaluate.score`) into the record: its
    sample metrics with the weights it holds, bits/dim with `likelihood_state` where given."""
    seconds = record["training"]["train_seconds"]
    record["training"]["train_images_per_s"] = record["training"]["samples_seen"] / seconds if seconds > 0 else None
    evaluation_started = time.perf_counter()
    record.update(
        evaluate_module(
            module,
            datamodule,
            cfg.protocol,
            n_generated=n_generated,
            run_dir=run_dir,
            seed=int(cfg.seed),
            timing_lock=run_dir.parent / TIMING_LOCK,
            # other jobs of a parallel sweep may still be training: time after the sweep
            defer_timing=int(cfg.concurrent_jobs) > 1,
            likelihood_state=likelihood_state,
        )
    )
    record["timing"]["phases"] = phase_seconds(phases, seconds, time.perf_counter() - evaluation_started)
    record["paths"].update(samples_grid="samples.png", samples="samples.npz", checkpoints="checkpoints")
    if record["conditional"]:
        record["paths"]["samples_by_class"] = "samples_by_class.png"


def train_only(cfg: DictConfig, run_dir: Path, built: tuple | Exception) -> None:
    """Training on a rank other than 0: no lock, no folder, no logger, no record, no evaluation."""
    if completed_record(run_dir, cfg):
        return  # rank 0 skips it too
    if isinstance(built, Exception):
        raise built  # rank 0 built the same config and records the failure
    datamodule, module = built
    if getattr(module, "fits_in_closed_form", False):
        return  # nothing to share: rank 0 fits it alone
    quality = ValidationQuality(datamodule, cfg.protocol)
    fit(
        module,
        datamodule,
        cfg,
        run_dir,
        None,
        [*quality_curve(cfg, datamodule), quality, *make_callbacks(cfg)],
        enable_progress_bar=False,
        owns_run_dir=False,
        quality_monitor=quality.monitor,
        flops_per_image=training_flops(cfg, module, datamodule),
    )


def training_flops(cfg: DictConfig, module, datamodule: ImageDataModule) -> float | None:
    """FLOPs per training image, counted before training with the FLOP model every record uses
    (`timing.flops_per_train_sample`); a `flops` budget cannot run without it, so a model whose
    count is unknown is refused in one line before it trains."""
    count, how = flops(module, "train", datamodule.train_images)
    if cfg.budget.kind == "flops" and not count:
        raise BenchError(
            f"budget.kind=flops: the FLOPs per training image of model {cfg.model.name} are unknown "
            f"({how or 'counted 0'}), so a FLOP budget cannot stop it; use budget=samples or budget=default"
        )
    return count


def scored_n(cfg: DictConfig, datamodule: ImageDataModule, run_name: str) -> int:
    """N, the images scored on each side: `protocol.n_generated`, capped at the training split's
    size where a small dataset (a folder of a few hundred images) cannot supply the data floor's N
    real images. Said before training; the record's `protocol.n_generated` holds the N used, and
    reports group by it, so a capped run is never averaged with uncapped ones."""
    n, available = int(cfg.protocol.n_generated), len(datamodule.train_images)
    if n <= available:
        return n
    print(
        f"note: {run_name}: protocol.n_generated={n} capped at {available}, the training split's size "
        "(the data floor scores that many real training images)",
        flush=True,
    )
    return available


def quality_curve(cfg: DictConfig, datamodule: ImageDataModule) -> list[pl.Callback]:
    """The cheap FID-during-training callback, where `protocol.quality_curve.every_seconds` asks for one."""
    curve_cfg = cfg.protocol.get("quality_curve")
    if not curve_cfg or not curve_cfg.get("every_seconds"):
        return []
    return [
        QualityCurve(
            datamodule, cfg.protocol, every_seconds=float(curve_cfg.every_seconds), n_samples=int(curve_cfg.n_samples)
        )
    ]
