"""Hand-made run records for report tests (no training involved)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.core.records import write_record


def tiny_png(seed: int = 0, size: int = 24) -> bytes:
    """A small random greyscale PNG."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def make_run(
    root: Path,
    model: str,
    seed: int,
    *,
    fid: float | None = 10.0,
    dataset: str = "digits",
    status: str = "completed",
    message: str | None = None,
    protocol_version: int = 1,
    extractor_sha: str = "ab" * 32,
    budget: tuple[str, float] = ("time", 180),
    n_generated: int = 1000,
    bpd: float | None = 2.0,
    bpd_kind: str = "exact",
    floor_fid: float = 5.0,
    curve: list[tuple[float, float]] | None = None,
    family: str | None = None,
    extra_metrics: dict[str, Any] | None = None,
    png: bool = True,
    floor_draws: list[float] | None = None,
    floor_sampling_std: list[float] | None = None,  # protocol v6: each draw's FID sampling sd
    environment: dict[str, Any] | None = None,  # merged into the record's environment
    sections: dict[str, dict[str, Any]] | None = None,  # merged into top-level sections (timing, training, ...)
    tag_extra: str = "",  # a different folder for the same model, dataset and protocol
) -> Path:
    """Write a schema-1 record (and a samples.png) under `root/<model>-<dataset>-seed<seed>__<tag>/`."""
    key = repr((model, dataset, protocol_version, extractor_sha, budget, n_generated)) + tag_extra
    tag = hashlib.sha1(key.encode()).hexdigest()[:8]
    folder = Path(root) / f"{model}-{dataset}-seed{seed}__{tag}"
    folder.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "run_id": folder.name,
        "status": status,
        "message": message,
        "config": {
            "seed": seed,
            "dataset": {"name": dataset, "n_generated": n_generated},
            "protocol": {"version": protocol_version},
        },
        "config_hash": tag,
        "family": family or model,
        "model": model,
        "dataset": dataset,
        "seed": seed,
        "budget": {"kind": budget[0], "value": budget[1], "stopped_by": budget[0]},
        "training": {
            "samples_seen": 1000,
            "optimizer_steps": 10,
            "epochs": 1,
            "train_seconds": 100.0 + seed,
            "train_images_per_s": 10.0,
            "eval_seconds_during_training": 1.0,
        },
        "curves": {"quality": [{"train_seconds": t, "samples_seen": int(t * 10), "fid": f} for t, f in curve or []]},
        "environment": {
            "packages": {"torch": "2.x"},
            "python": "3.x",
            "device": "cpu",
            "threads": 1,
            "git_revision": None,
            "concurrent_jobs": 2,
        },
        "paths": {"samples_grid": "samples.png"},
        "created": "2026-01-01T00:00:00Z",
    }
    if status == "completed":
        record["metrics"] = {
            "fid": fid,
            "kid_mean": 0.01,
            "kid_std": 0.001,
            "inception_score": 8.0,
            "precision": 0.9,
            "recall": 0.8,
            "density": 1.0,
            "coverage": 0.9,
            "bits_per_dim": bpd,
            "bits_per_dim_kind": bpd_kind if bpd is not None else "n/a",
            "memorization": 0.05,
            **(extra_metrics or {}),
        }
        record["protocol"] = {
            "version": protocol_version,
            "extractor": {"id": "digits-cnn", "sha256": extractor_sha},
            "n_generated": n_generated,
            "n_reference": 450,
            "reference_split": "test",
        }
        record["data_floor"] = {
            "fid": floor_fid,
            "kid_mean": 0.0,
            "inception_score": 9.9,
            "precision": 0.98,
            "recall": 0.96,
            "density": 1.0,
            "coverage": 0.97,
        }
        if floor_draws is not None:  # protocol v2: the floor's draws, their mean as its headline value
            record["data_floor"].update(
                fid=sum(floor_draws) / len(floor_draws),
                n_draws=len(floor_draws),
                draws=[{**record["data_floor"], "fid": f} for f in floor_draws],
            )
            for draw, std in zip(record["data_floor"]["draws"], floor_sampling_std or []):
                draw["fid_sampling_std"] = std
        record["timing"] = {"sample_images_per_s": 1000.0 * (seed + 1), "parameters_sampling": 12345}
    record["environment"].update(environment or {})
    for section, values in (sections or {}).items():
        record.setdefault(section, {}).update(values)
    write_record(folder, record)
    if png:
        (folder / "samples.png").write_bytes(tiny_png(seed))
    return folder
