"""A run's record from birth to disk: one builder, one test for "already done", one writer.

The record's fields are described in `bench.core.records`; this module fills in the part a run
knows before it trains (identity, config, budget) and stamps and writes it when it ends, whether
the run completed, failed, diverged, was interrupted or never got past its config.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bench.config.run_folder import config_hash
from bench.core.atomic import write_bytes_atomic
from bench.core.records import RECORD_NAME, SCHEMA_VERSION, read_record, write_record
from bench.core.schema import HEADLINE_KEYS, METRIC_BY_KEY


def new_record(cfg: DictConfig, run_dir: Path, message: str | None = None) -> dict:
    """The record of `cfg`'s run as it starts: `failed` until the run says otherwise.

    Read tolerantly, so that a sweep job whose config failed validation (`budget.value=abc`)
    still gets a readable record naming its mistake.
    """
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_dir.name,
        "status": "failed",
        "message": message,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "config_hash": config_hash(cfg),
        **{
            key: _scalar(OmegaConf.select(cfg, path, default=None))
            for key, path in (
                ("family", "model.family"),
                ("model", "model.name"),
                ("dataset", "dataset.name"),
                ("seed", "seed"),
            )
        },
        "conditional": OmegaConf.select(cfg, "model.conditional", default=False) is True,
        "budget": {
            "kind": OmegaConf.select(cfg, "budget.kind", default=None),
            "value": _budget_value(cfg),
            "stopped_by": None,
        },
        "training": {},
        "curves": {},
        "paths": {},
    }


def completed_record(run_dir: Path, cfg: DictConfig) -> dict | None:
    """The record in `run_dir` if it is a completed run of this very config (same hash), else None;
    for a tuning trial (`validate_only`), completed means `validated`."""
    existing = read_record(run_dir)
    done = "validated" if OmegaConf.select(cfg, "validate_only", default=False) else "completed"
    if existing and existing.get("status") == done and existing.get("config_hash") == config_hash(cfg):
        return existing
    return None


def save_record(run_dir: Path, record: dict) -> None:
    """Stamp `record` with the time and write it atomically; if the disk refuses, one line says so."""
    record["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    _write_or_say(run_dir, record)


def save_log(path: Path, text: str) -> None:
    """A log beside the record (a traceback), written atomically, or one line saying it could not be."""
    _write_or_say(path, text.encode())


def _write_or_say(path: Path, content: bytes | dict) -> None:
    try:
        if isinstance(content, dict):
            write_record(path, content)
        else:
            write_bytes_atomic(path, content)
    except OSError as err:
        where = path / RECORD_NAME if isinstance(content, dict) else path
        print(f"error: could not write {where}: {err.strerror or err}", file=sys.stderr, flush=True)


def headline(record: dict) -> str:
    """One line a sweep prints per finished job."""
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


def _scalar(value):
    return value if value is None or isinstance(value, (int, float, str)) else str(value)


def _budget_value(cfg: DictConfig) -> float | None:
    value = OmegaConf.select(cfg, "budget.value", default=None)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None  # e.g. `budget.value=abc`: the message says so; the record stays readable
