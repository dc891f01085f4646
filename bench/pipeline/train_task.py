"""The Hydra task: one config in, one run folder with its record out.

`train(cfg)` is the plain function tests and `bench-train` (`bench.cli.train`) call. It checks
the config, claims the run folder (a lock; a completed run of the same config is skipped), and
runs the stages (`bench.pipeline.stages`) here, in spawned worker processes, or as one rank of a
launch that SLURM or torchrun started.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from bench.config.run_folder import run_directory
from bench.config.schema import validate
from bench.core.errors import BenchError, os_error_line
from bench.core.records import RECORD_NAME, RunLock, read_record
from bench.pipeline.run_record import completed_record, new_record, save_record
from bench.pipeline.stages import build, run_stages, train_only
from bench.run.accelerator import check_accelerator
from bench.run.launch import plan_launch, set_rank_environment, spawn_ranks


def train(cfg: DictConfig) -> dict | None:
    """Run one config end to end and return its record (None if another process holds it).

    A completed record with the same config hash is returned without training ('skip:' line).
    Training errors never escape: they become a `failed`/`diverged` record with the message.
    User mistakes in the config (values, and networks that cannot be built from it) and a
    results folder that cannot be created raise `BenchError` before anything is written.
    """
    validate(cfg)
    check_accelerator(cfg.trainer)  # one line, before a run folder exists, instead of Lightning's traceback
    launch = plan_launch(cfg.trainer)
    _prepare_process(cfg)
    try:
        built: tuple | Exception = build(cfg)
    except BenchError:
        raise
    except Exception as err:  # not a config mistake: it becomes the run's `failed` record
        built = err
    run_dir = run_directory(cfg)
    if launch.rank != 0:  # a rank of SLURM's or torchrun's launch: it trains, rank 0 owns the folder
        train_only(cfg, run_dir, built)
        return None
    lock = RunLock(run_dir)
    try:
        acquired = lock.acquire()
    except OSError as err:
        raise BenchError(
            f"results_dir={cfg.results_dir}: cannot create the run folder {run_dir} ({err.strerror or err})"
        ) from None
    if not acquired:
        print(f"skip: {run_dir.name} is running in another process", flush=True)
        return None
    try:
        existing = completed_record(run_dir, cfg)
        if existing:
            print(f"skip: {run_dir.name} already completed ({run_dir / RECORD_NAME})", flush=True)
            return existing
        if launch.kind == "spawn":
            del built  # each worker builds its own copy
            return _run_spawned(cfg, run_dir, launch.world_size)
        return run_stages(cfg, run_dir, built)
    finally:
        lock.release()


def _quiet_lightning() -> None:
    """Keep a run's output to what a reader needs: Lightning's banners and tips are noise here."""
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in (
        r".*exists and is not empty.*",
        r".*smaller than the logging interval.*",
        r".*isinstance\(treespec, LeafSpec\).*",
        r".*`weights_only` was not set.*",
        r".*does not have many workers.*",
        r".*litlogger.*",
        r".*sync_dist=True.*",
    ):  # DDP: every rank scores the whole validation split (datamodule)
        warnings.filterwarnings("ignore", message=message)


def _prepare_process(cfg: DictConfig) -> None:
    """Settings every process of a run applies before building anything."""
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
        record = new_record(cfg, run_dir, message=problem or "no record was written by rank 0")
        record["budget"]["stopped_by"] = "error"
        print(f"error: {run_dir.name}: {record['message']}", file=sys.stderr, flush=True)
        save_record(run_dir, record)
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
        built: tuple | Exception = build(cfg)
    except Exception as err:  # rank 0 records it; the job process built the same config without error
        built = err
    if local_rank == 0:
        run_stages(cfg, Path(run_dir), built)
    else:
        train_only(cfg, Path(run_dir), built)


def record_failed_job(cfg: DictConfig, message: str) -> dict | None:
    """Write the `failed` record of a sweep job whose config failed validation; None (and nothing
    written) where the config cannot even name its run folder or another process holds it."""
    try:
        run_dir = run_directory(cfg)
        record = new_record(cfg, run_dir, message=message)
    except Exception:  # e.g. `~seed`: no folder to put a record in; the error line was printed
        return None
    lock = RunLock(run_dir)
    try:
        if not lock.acquire():
            return None
        save_record(run_dir, record)
    except OSError as err:
        print(f"error: {os_error_line(err)}", file=sys.stderr, flush=True)
    finally:
        lock.release()
    return record
