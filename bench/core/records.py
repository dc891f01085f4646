"""The record store: every read, check, write, scan and lock of a run folder's `result.json`.

The run (`bench.pipeline`), the timing pass, rescore and the report all go through here.

Schema version 1; the fields' types are declared in `bench.core.schema.Record`, and every
metric (key, label, unit, better direction) in `bench.core.schema.METRICS`. Keys marked * may
be absent on failed runs::

    schema_version   1
    run_id           folder name of the run: "<readable name>__<config hash>"
    status           "completed" | "failed" | "diverged" | "interrupted" | "validated" (a tuning
                      trial: trained and scored on the validation split only, no test metrics)
    message          null, or what went wrong (one line)
    config           the resolved config (dict)
    config_hash      8 hex chars over the keys that change results (see bench.config.run_folder)
    family, model, dataset, seed
    conditional      true when the model conditions on class labels (model.conditional); absent
                      before protocol v3 (read as false)
    resumed*         true when training loaded a checkpoint (see README: what a resume restores)
    budget           {kind: "time"|"samples"|"flops", value, stopped_by: "time"|"samples"|"flops"|
                      "max_epochs"|"early_stopping"|"closed_form"|"diverged"|"error"|"interrupted"}
    training         {samples_seen, optimizer_steps, epochs, train_seconds, train_images_per_s,
                      eval_seconds_during_training, train_flops, flops_per_train_image (counted
                      before training; absent from older records)}
    checkpoint*      the sample metrics' checkpoint: {selected, last, selection: "best val/fid
                      (validation)" | "final weights", selected_at: {step, samples_seen,
                      train_seconds, train_flops, value, validation: {val/fid, val/bpd, ...} at that step}};
                      likelihood families add `likelihood`: the same for bits/dim ("best val/bpd
                      (validation)"). Before protocol v5: one checkpoint, selected by val/bpd or final
    metrics*         the keys of METRICS in section "metrics", plus bits_per_dim_kind
                      ("exact" | "bound" | "n/a"); the conditional ones (accuracy, class_kid_mean,
                      class_kid_worst, bits_per_dim_given_label, ...) are null on unconditional runs
    per_class*       conditional runs: {num_classes, labels, n_generated, n_reference, accuracy,
                      kid_mean, kid_std} (lists, one entry per class)
    guidance_sweep*  when protocol.guidance_sweep is set: {weights, applies, reason,
                      points: [{guidance, accuracy, fid, recall}]}
    protocol*        {version, extractor: {id, sha256, test_accuracy, accuracy_split, n_test_images,
                      classes, feature_rank, num_features}, inception_score (where IS comes from, or
                      "n/a: ..." on unlabelled datasets), n_generated, n_reference, reference_split,
                      scoring_seed, floor_draws, kid_subset_size, fid_jackknife_groups (v6), ...}
    data_floor*      the floor's feature metrics (means over its draws), {draws: [...], n_draws,
                      n_generated, source, note}; protocol v1: one draw, no `draws`
    timing*          {sample_images_per_s, sample_images_per_cpu_s, latency_ms_per_image, measurement: {pass,
                      warmup, warmup_draws, warmup_images, scored_images, scored_draw_s, repeats, statistic,
                      images_per_repeat, timed_s, max_timed_s, exclusive_lock, lock_wait_s},
                      phases: {startup, training, validation, checkpointing, evaluation},
                      parameters_sampling, parameters_training, flops_per_sample(_source),
                      flops_per_train_sample(_source), peak_memory_mb, peak_memory_kind}
    curves           {quality: [{train_seconds, samples_seen, train_flops, fid}], validation: [{step,
                      samples_seen, train_seconds, train_flops, val/fid, val/bpd, ...}]} (either may
                      be absent; older records have no train_flops)
    environment      {packages: {...}, python, platform, device, threads, git_revision, concurrent_jobs}
    dataset_spec*    the dataset's shape and levels, and the split's hash
    paths            {samples_grid, samples, metrics_csv, checkpoints, samples_by_class (conditional
                      runs)} relative to the run folder
    created          ISO-8601 UTC time the record was written
    divergence*      {detected_at_step, last_finite_step, last_finite_loss} on `diverged` runs
"""

from __future__ import annotations

import fcntl
import json
import os
import warnings
from pathlib import Path
from typing import Any, get_args

from bench.core.atomic import write_json_atomic
from bench.core.errors import BenchError
from bench.core.schema import Status

SCHEMA_VERSION = 1
RECORD_NAME = "result.json"
STATUSES: tuple[str, ...] = get_args(Status)


_NUMBER = (int, float)
_SCALAR = (int, float, str)
#: The type every top-level key must have when present (None is allowed where a run may lack it).
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "schema_version": (int,),
    "run_id": (str,),
    "status": (str,),
    "message": (str,),
    "config": (dict,),
    "config_hash": (str,),
    "family": (str,),
    "model": (str,),
    "dataset": (str,),
    "seed": _SCALAR,
    "budget": (dict,),
    "training": (dict,),
    "checkpoint": (dict,),
    "metrics": (dict,),
    "protocol": (dict,),
    "data_floor": (dict,),
    "timing": (dict,),
    "curves": (dict,),
    "environment": (dict,),
    "paths": (dict,),
    "created": (str,),
    "dataset_spec": (dict,),
    "divergence": (dict,),
    "conditional": (bool,),
    "per_class": (dict,),
    "guidance_sweep": (dict,),
}
#: Sections whose values the report averages: numbers (text only for a `*_kind` label).
_NUMERIC_SECTIONS = ("metrics", "training")


def record_problem(record: Any) -> str | None:
    """What makes `record` unusable in a report (wrong type at a top-level key, an unknown status,
    a non-numeric metric), or None if it can be used."""
    if not isinstance(record, dict):
        return f"expected a JSON object, found {type(record).__name__}"
    for key, types in FIELD_TYPES.items():
        value = record.get(key)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool) and bool not in types):
            return f"{key}: expected {' or '.join(t.__name__ for t in types)}, found {type(value).__name__}"
    if record.get("status") not in STATUSES:
        return f"status: expected one of {', '.join(STATUSES)}, found {record.get('status')!r}"
    for section in _NUMERIC_SECTIONS:
        for name, value in (record.get(section) or {}).items():
            allowed = (str,) if name.endswith("_kind") else _NUMBER
            if value is not None and (not isinstance(value, allowed) or isinstance(value, bool)):
                return (
                    f"{section}.{name}: expected {'text' if name.endswith('_kind') else 'a number'} or null, "
                    f"found {type(value).__name__}"
                )
    budget = record.get("budget") or {}
    if budget.get("value") is not None and not isinstance(budget["value"], _NUMBER):
        return f"budget.value: expected a number, found {type(budget['value']).__name__}"
    return None


def write_record(run_dir: Path, record: dict) -> Path:
    record = {"schema_version": SCHEMA_VERSION, **record}
    path = Path(run_dir) / RECORD_NAME
    write_json_atomic(path, record)
    return path


def read_record(path: Path) -> dict | None:
    """The record at `path` (a run folder or a result.json), or None with a warning if it is
    missing, unreadable, or not a schema this code understands."""
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_NAME
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        warnings.warn(f"skipping unreadable record {path}: {err}", stacklevel=2)
        return None
    if not isinstance(record, dict) or record.get("schema_version") != SCHEMA_VERSION:
        warnings.warn(f"skipping {path}: expected a result record with schema_version {SCHEMA_VERSION}", stacklevel=2)
        return None
    problem = record_problem(record)
    if problem:
        warnings.warn(f"skipping {path}: {problem}", stacklevel=2)
        return None
    return record


class RunLock:
    """An exclusive, non-blocking lock on a run folder (released when the process dies).

    `acquire()` returns False when another process holds the lock.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def record_files(root: Path) -> list[Path]:
    """Every record under `root`, at any depth, in path order."""
    return sorted(Path(root).rglob(RECORD_NAME))


def run_dirs(paths: list[str]) -> list[Path]:
    """The run folders the command line names: a run folder itself, or every run under a folder."""
    dirs: list[Path] = []
    for p in map(Path, paths):
        if (p / RECORD_NAME).is_file():
            dirs.append(p)
        elif p.is_dir():
            dirs.extend(path.parent for path in record_files(p))
        else:
            raise BenchError(f"{p}: expected a run folder or a folder of runs")
    return dirs
