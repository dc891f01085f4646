"""The Hydra task: build -> fit -> evaluate -> write the record.

`train(cfg)` is the plain function tests call; `main` (console script `bench-train`) is the
thin `@hydra.main` wrapper around it. torch and Lightning are imported where a run needs them,
so that `--help`, `--cfg` and a mistake on the command line are answered in about a second.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from bench.config.schema import validate
from bench.run.launch import plan_launch, set_rank_environment, spawn_ranks
from bench.core.errors import BenchError, os_error_line
from bench.core.records import RECORD_NAME, SCHEMA_VERSION, read_record, write_record
from bench.core.atomic import write_bytes_atomic
from bench.core.records import RunLock
from bench.config.run_folder import config_hash, run_directory

if TYPE_CHECKING:

    import pytorch_lightning as pl


def _quiet_lightning() -> None:
    """Keep a run's output to what a reader needs: Lightning's banners and tips are noise here."""
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in (r".*exists and is not empty.*", r".*smaller than the logging interval.*",
                    r".*isinstance\(treespec, LeafSpec\).*", r".*`weights_only` was not set.*",
                    r".*does not have many workers.*", r".*litlogger.*",
                    r".*sync_dist=True.*"):  # DDP: every rank scores the whole validation split (datamodule)
        warnings.filterwarnings("ignore", message=message)


def train(cfg: DictConfig) -> dict | None:
    """Run one config end to end and return its record (None if another process holds it).

    A completed record with the same config hash is returned without training ('skip:' line).
    Training errors never escape: they become a `failed`/`diverged` record with the message.
    User mistakes in the config (values, and networks that cannot be built from it) and a
    results folder that cannot be created raise `BenchError` before anything is written.
    """
    from bench.run.accelerator import check_accelerator

    validate(cfg)
    check_accelerator(cfg.trainer)  # one line, before a run folder exists, instead of Lightning's traceback
    launch = plan_launch(cfg.trainer)
    _prepare_process(cfg)
    try:
        built: tuple | Exception = _build(cfg)
    except BenchError:
        raise
    except Exception as err:  # not a config mistake: it becomes the run's `failed` record below
        built = err
    run_dir = run_directory(cfg)
    if launch.rank != 0:  # a rank of SLURM's or torchrun's launch: it trains, rank 0 owns the folder
        _train_as_other_rank(cfg, run_dir, built)
        return None
    lock = RunLock(run_dir)
    try:
        acquired = lock.acquire()
    except OSError as err:
        raise BenchError(f"results_dir={cfg.results_dir}: cannot create the run folder {run_dir} "
                         f"({err.strerror or err})") from None
    if not acquired:
        print(f"skip: {run_dir.name} is running in another process", flush=True)
        return None
    try:
        existing = read_record(run_dir)
        if existing and existing.get("status") == "completed" and existing.get("config_hash") == config_hash(cfg):
            print(f"skip: {run_dir.name} already completed ({run_dir / RECORD_NAME})", flush=True)
            return existing
        if launch.kind == "spawn":
            del built  # each worker builds its own copy
            return _run_spawned(cfg, run_dir, launch.world_size)
        return _run(cfg, run_dir, built)
    finally:
        lock.release()


def _prepare_process(cfg: DictConfig) -> None:
    """Settings every process of a run applies before building anything."""
    import torch

    _quiet_lightning()
    torch.set_num_threads(int(cfg.threads))  # before anything is built
    # deterministic mode would fill every new tensor with NaN; no kernel of ours reads unwritten memory
    torch.utils.deterministic.fill_uninitialized_memory = False


def _run_spawned(cfg: DictConfig, run_dir: Path, world: int) -> dict:
    """Run `cfg` in `world` worker processes (`bench.run.launch`); rank 0 writes the record, which is
    returned. Where no worker wrote one (a rank died), a `failed` record says which and how."""
    record_path = run_dir / RECORD_NAME
    before = _file_identity(record_path)
    container = OmegaConf.to_container(cfg, resolve=True)  # plain data: the workers have no Hydra context
    problem = spawn_ranks(_rank_entry, (container, str(run_dir), world), world)
    record = read_record(run_dir) if _file_identity(record_path) != before else None
    if record is None:
        record = _base_record(cfg, run_dir)
        record.update(message=problem or "no record was written by rank 0", created=_now())
        record["budget"]["stopped_by"] = "error"
        print(f"error: {run_dir.name}: {record['message']}", file=sys.stderr, flush=True)
        _write_or_say(record_path, record)
    elif problem:
        print(f"warning: {run_dir.name}: {problem}", file=sys.stderr, flush=True)
    return record


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _rank_entry(local_rank: int, port: int, container: dict, run_dir: str, world: int) -> None:
    """One worker of `_run_spawned`: rank 0 runs the whole run; the others only train."""
    set_rank_environment(local_rank, world, port)
    cfg = OmegaConf.create(container)
    _prepare_process(cfg)
    try:
        built: tuple | Exception = _build(cfg)
    except Exception as err:  # rank 0 records it; the job process built the same config without error
        built = err
    if local_rank == 0:
        _run(cfg, Path(run_dir), built)
    else:
        _train_as_other_rank(cfg, Path(run_dir), built)


def _train_as_other_rank(cfg: DictConfig, run_dir: Path, built: tuple | Exception) -> None:
    """Training on a rank other than 0: no lock, no folder, no logger, no record, no evaluation."""
    from bench.run.fit import fit

    existing = read_record(run_dir)
    if existing and existing.get("status") == "completed" and existing.get("config_hash") == config_hash(cfg):
        return  # rank 0 skips it too
    if isinstance(built, Exception):
        raise built  # rank 0 built the same config and records the failure
    datamodule, module = built
    if getattr(module, "fits_in_closed_form", False):
        return  # nothing to share: rank 0 fits it alone
    fit(module, datamodule, cfg, run_dir, None, [*_quality_curve(cfg, datamodule)], enable_progress_bar=False,
        owns_run_dir=False)


def _build(cfg: DictConfig) -> tuple:
    """The seeded data module and model of `cfg`; a network the config cannot build is a `BenchError`."""
    import pytorch_lightning as pl

    from bench.data import ImageDataModule
    from bench.models.build import build_model

    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    dataset_kwargs = OmegaConf.to_container(cfg.dataset, resolve=True)
    datamodule = ImageDataModule(batch_size=int(cfg.model.batch_size), shuffle_seed=int(cfg.seed), **dataset_kwargs)
    return datamodule, build_model(cfg.model, datamodule.spec)


def _base_record(cfg: DictConfig, run_dir: Path) -> dict:
    return {
        "schema_version": SCHEMA_VERSION, "run_id": run_dir.name, "status": "failed", "message": None,
        "config": OmegaConf.to_container(cfg, resolve=True), "config_hash": config_hash(cfg),
        "family": cfg.model.family, "model": cfg.model.name, "dataset": cfg.dataset.name, "seed": int(cfg.seed),
        "conditional": bool(cfg.model.get("conditional", False)),
        "budget": {"kind": cfg.budget.kind, "value": float(cfg.budget.value), "stopped_by": None},
        "training": {}, "curves": {}, "paths": {},
    }


def _run(cfg: DictConfig, run_dir: Path, built: tuple | Exception) -> dict:
    import torch

    from bench.run.accelerator import effective_precision
    from bench.run.environment import environment
    from bench.evaluate.score import evaluate_module
    from bench.evaluate.cost.timing import TIMING_LOCK
    from bench.run.phase_times import PhaseTimes, phase_seconds
    from bench.run.rng_state import RngState
    from bench.run.fit import fit
    from bench.run.loggers import make_logger
    from bench.models.baselines import fit_on
    from bench.run.progress import make_progress

    record = _base_record(cfg, run_dir)
    logger, phases, started = None, None, time.perf_counter()
    try:
        if isinstance(built, Exception):
            raise built
        datamodule, module = built
        record["environment"] = environment(torch.device("cuda" if cfg.trainer.accelerator == "gpu" else "cpu"),
                                            int(cfg.concurrent_jobs), family=cfg.model.family)
        record["dataset_spec"] = {**datamodule.spec.to_dict(), "split_sha256": datamodule.split.sha256()}
        record["environment"]["precision"] = effective_precision(cfg.trainer)  # may differ from the config's
        n_generated = _scored_n(cfg, datamodule, run_dir.name)
        if getattr(module, "fits_in_closed_form", False):
            started = time.perf_counter()
            fit_on(module, datamodule)
            seconds = time.perf_counter() - started
            record["budget"]["stopped_by"] = "closed_form"
            record["training"] = {"samples_seen": len(datamodule.train_images), "optimizer_steps": 0, "epochs": 1,
                                  "train_seconds": seconds, "eval_seconds_during_training": 0.0}
        else:
            logger = make_logger(cfg, run_dir, run_dir.name)
            callbacks, enable_bar = make_progress(mode=cfg.progress, run_name=run_dir.name)
            callbacks += [*_quality_curve(cfg, datamodule), rng := RngState(), phases := PhaseTimes(started)]
            outcome = fit(module, datamodule, cfg, run_dir, logger, callbacks, enable_bar)
            record["budget"]["stopped_by"], record["resumed"] = outcome.stopped_by, rng.resumed
            record["training"] = {k: getattr(outcome, k) for k in (
                "samples_seen", "optimizer_steps", "epochs", "train_seconds", "eval_seconds_during_training")}
            record["checkpoint"], record["curves"] = outcome.checkpoint, outcome.curves
            record["paths"]["metrics_csv"] = "metrics.csv" if cfg.logger.kind == "csv" else None
            if outcome.stopped_by == "diverged":
                record.update(status="diverged", message=outcome.divergence_message, divergence=outcome.divergence)
                return record
        seconds = record["training"]["train_seconds"]
        record["training"]["train_images_per_s"] = record["training"]["samples_seen"] / seconds if seconds > 0 else None
        evaluation_started = time.perf_counter()
        record.update(evaluate_module(module, datamodule, cfg.protocol, n_generated=n_generated,
                                      run_dir=run_dir, seed=int(cfg.seed), timing_lock=run_dir.parent / TIMING_LOCK,
                                      # other jobs of a parallel sweep may still be training: time after the sweep
                                      defer_timing=int(cfg.concurrent_jobs) > 1))
        record["timing"]["phases"] = phase_seconds(phases, seconds, time.perf_counter() - evaluation_started)
        record["paths"].update(samples_grid="samples.png", samples="samples.npz", checkpoints="checkpoints")
        if record["conditional"]:
            record["paths"]["samples_by_class"] = "samples_by_class.png"
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
        _write_or_say(run_dir / "error.log", traceback.format_exc().encode())
        print(f"error: {run_dir.name} failed: {record['message']} (traceback in {run_dir / 'error.log'})",
              file=sys.stderr, flush=True)
    finally:
        if cfg.logger.kind == "wandb":
            import wandb

            wandb.finish()
        record["created"] = _now()
        _write_or_say(run_dir / RECORD_NAME, record)
        if cfg.progress != "none":
            print(_headline(record), flush=True)
    return record


def _scored_n(cfg: DictConfig, datamodule, run_name: str) -> int:
    """N, the images scored on each side: `protocol.n_generated`, capped at the training split's
    size where a small dataset (a folder of a few hundred images) cannot supply the data floor's N
    real images. Said before training; the record's `protocol.n_generated` holds the N used, and
    reports group by it, so a capped run is never averaged with uncapped ones."""
    n, available = int(cfg.protocol.n_generated), len(datamodule.train_images)
    if n <= available:
        return n
    print(f"note: {run_name}: protocol.n_generated={n} capped at {available}, the training split's size "
          "(the data floor scores that many real training images)", flush=True)
    return available


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_or_say(path: Path, content: bytes | dict) -> None:
    """Write a record (dict) or a log (bytes) atomically; if the disk refuses, one line says so."""
    try:
        if isinstance(content, dict):
            write_record(path.parent, content)
        else:
            write_bytes_atomic(path, content)
    except OSError as err:
        print(f"error: could not write {path}: {err.strerror or err}", file=sys.stderr, flush=True)


def _headline(record: dict) -> str:
    """One line a sweep prints per finished job."""
    from bench.core.schema import HEADLINE_KEYS, METRIC_BY_KEY

    parts = [f"[{record['run_id']}] {record['status']}"]
    metrics = record.get("metrics") or {}
    for key in HEADLINE_KEYS:
        if metrics.get(key) is not None:
            spec = METRIC_BY_KEY[key]
            kind = f" ({metrics[key + '_kind']})" if metrics.get(key + "_kind") else ""
            parts.append(f"{spec.label} {metrics[key]:.4g}{kind}")
    if record.get("message"):
        parts.append(record["message"])
    return " | ".join(parts)


def _quality_curve(cfg: DictConfig, datamodule) -> list[pl.Callback]:
    curve_cfg = cfg.protocol.get("quality_curve")
    if not curve_cfg or not curve_cfg.get("every_seconds"):
        return []
    from bench.evaluate.quality_curve import QualityCurve

    return [QualityCurve(datamodule, cfg.protocol, every_seconds=float(curve_cfg.every_seconds),
                         n_samples=int(curve_cfg.n_samples))]


def record_failed_job(cfg: DictConfig, message: str) -> dict | None:
    """Write the `failed` record of a sweep job whose config failed validation; None (and nothing
    written) where the config cannot even name its run folder or another process holds it."""
    try:
        run_dir = run_directory(cfg)
        record = {"schema_version": SCHEMA_VERSION, "run_id": run_dir.name, "status": "failed", "message": message,
                  "config": OmegaConf.to_container(cfg, resolve=True), "config_hash": config_hash(cfg),
                  **{key: _scalar(OmegaConf.select(cfg, path, default=None)) for key, path in (
                      ("family", "model.family"), ("model", "model.name"), ("dataset", "dataset.name"),
                      ("seed", "seed"))},
                  "budget": _budget_as_given(cfg), "training": {}, "curves": {}, "paths": {}}
    except Exception:  # e.g. `~seed`: no folder to put a record in; the error line was printed
        return None
    lock = RunLock(run_dir)
    try:
        if not lock.acquire():
            return None
        record["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        _write_or_say(run_dir / RECORD_NAME, record)
    except OSError as err:
        print(f"error: {os_error_line(err)}", file=sys.stderr, flush=True)
    finally:
        lock.release()
    return record


def _scalar(value):
    return value if value is None or isinstance(value, (int, float, str)) else str(value)


def _budget_as_given(cfg: DictConfig) -> dict:
    value = OmegaConf.select(cfg, "budget.value", default=None)
    try:
        value = float(value) if value is not None else None
    except (TypeError, ValueError):
        value = None  # e.g. `budget.value=abc`: the message says so; the record stays readable
    return {"kind": OmegaConf.select(cfg, "budget.kind", default=None), "value": value, "stopped_by": None}
