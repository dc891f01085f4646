import json
import os
import subprocess
import sys

import pytest

from bench.config.run_folder import run_directory
from bench.core.atomic import write_json_atomic
from bench.core.records import RECORD_NAME, RunLock, read_record
from bench.pipeline.train_task import train
from tests.helpers import REPO_ROOT
from tests.helpers.configs import compose_config, tiny_overrides

CORE_KEYS = (
    "schema_version",
    "run_id",
    "status",
    "config",
    "config_hash",
    "family",
    "model",
    "dataset",
    "seed",
    "budget",
    "training",
    "checkpoint",
    "metrics",
    "protocol",
    "timing",
    "environment",
    "paths",
    "created",
)


def test_run_writes_a_complete_record_and_a_rerun_is_skipped(tmp_path, capsys):
    cfg = compose_config(tiny_overrides(tmp_path))
    record = train(cfg)
    run_dir = run_directory(cfg)
    assert record["status"] == "completed", record["message"]
    assert all(key in record for key in CORE_KEYS)
    assert record["budget"] == {"kind": "samples", "value": 1024.0, "stopped_by": "samples"}
    assert record["training"]["samples_seen"] >= 1024 and record["training"]["optimizer_steps"] > 0
    assert record["environment"]["threads"] == 1
    assert record["checkpoint"]["selection"].startswith("best val/fid")
    assert record["checkpoint"]["likelihood"]["selection"].startswith("best val/bpd")
    for rel in ("samples.png", "samples.npz", "metrics.csv", "checkpoints/last.ckpt", record["checkpoint"]["selected"]):
        assert (run_dir / rel).is_file(), rel
    assert read_record(run_dir) == json.loads((run_dir / RECORD_NAME).read_text())

    mtime = (run_dir / RECORD_NAME).stat().st_mtime_ns
    capsys.readouterr()
    again = train(cfg)
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"skip: {run_dir.name} already completed ({run_dir / RECORD_NAME})"]
    assert again == record and (run_dir / RECORD_NAME).stat().st_mtime_ns == mtime


def test_same_seed_and_samples_budget_give_identical_metrics(tmp_path):
    first = train(compose_config(tiny_overrides(tmp_path / "a")))
    second = train(compose_config(tiny_overrides(tmp_path / "b")))
    other_seed = train(compose_config(tiny_overrides(tmp_path / "c", "seed=1")))
    assert first["metrics"] == second["metrics"]
    assert first["training"]["samples_seen"] == second["training"]["samples_seen"]
    assert other_seed["metrics"]["bits_per_dim"] != first["metrics"]["bits_per_dim"]


def test_interrupted_run_resumes_from_last_checkpoint(tmp_path):
    cfg = compose_config(tiny_overrides(tmp_path))
    first = train(cfg)
    (run_directory(cfg) / RECORD_NAME).unlink()  # as if killed after its last checkpoint
    resumed = train(cfg)
    assert resumed["status"] == "completed"
    # The budget was already spent in the checkpoint: no further training happened.
    assert resumed["training"]["samples_seen"] == first["training"]["samples_seen"]
    assert resumed["training"]["optimizer_steps"] == first["training"]["optimizer_steps"]


def test_wall_clock_budget_stops_on_time(tmp_path):
    cfg = compose_config(tiny_overrides(tmp_path, "budget=default", "budget.value=1.5"))
    record = train(cfg)
    assert record["budget"]["stopped_by"] == "time"
    assert 1.5 <= record["training"]["train_seconds"] < 3.0


def test_a_locked_run_is_not_started_twice(tmp_path, capsys):
    cfg = compose_config(tiny_overrides(tmp_path))
    lock = RunLock(run_directory(cfg))
    assert lock.acquire()
    try:
        assert train(cfg) is None
        assert "running in another process" in capsys.readouterr().out
    finally:
        lock.release()
    assert not (run_directory(cfg) / RECORD_NAME).exists()


def test_record_write_is_atomic(tmp_path):
    path = tmp_path / RECORD_NAME
    write_json_atomic(path, {"status": "completed"})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"status": object()})
    assert json.loads(path.read_text()) == {"status": "completed"}
    assert [p.name for p in tmp_path.iterdir()] == [RECORD_NAME]


def test_unreadable_record_is_skipped_with_a_warning(tmp_path):
    (tmp_path / RECORD_NAME).write_text('{"schema_version": 1, "status": ')
    with pytest.warns(UserWarning, match="unreadable record"):
        assert read_record(tmp_path) is None


def test_bench_train_runs_end_to_end_in_a_subprocess(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cli.train", *tiny_overrides(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = list(tmp_path.rglob(RECORD_NAME))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["status"] == "completed" and record["metrics"]["bits_per_dim"] > 0


@pytest.mark.slow
def test_vae_beats_the_independent_pixel_model_on_digits_test(tmp_path):
    cfg = compose_config([f"results_dir={tmp_path}", "budget=samples", "budget.value=30000", "progress=none"])
    record = train(cfg)
    assert record["metrics"]["bits_per_dim_kind"] == "bound"
    assert record["metrics"]["bits_per_dim"] < 2.438


def test_wandb_logger_stays_offline_and_is_finished(tmp_path):
    wandb = pytest.importorskip("wandb")
    cfg = compose_config(tiny_overrides(tmp_path, "logger=wandb"))
    assert cfg.logger.mode == "offline"
    record = train(cfg)
    assert record["status"] == "completed"
    assert wandb.run is None  # finished, so the next job of a sweep starts its own run
    assert list((run_directory(cfg) / "wandb").glob("offline-run-*"))


def test_a_finished_jobs_line_names_each_headline_metric_by_its_schema_label():
    from bench.core.schema import HEADLINE_KEYS, label
    from bench.pipeline.run_record import headline

    line = headline(
        {
            "run_id": "r",
            "status": "completed",
            "metrics": {"fid": 23.456, "bits_per_dim": 1.8234, "bits_per_dim_kind": "bound"},
        }
    )
    for key in HEADLINE_KEYS:
        assert label(key) in line
    assert "23.46" in line and "1.823 (bound)" in line


def test_a_folder_smaller_than_n_is_scored_at_its_training_split_size(tmp_path, capsys):
    """`dataset=folder` with its defaults on 40 images: N (1,000) is capped at the 28 training
    images the data floor can draw, said before training and recorded."""
    from tests.helpers.fake_data_roots import random_image, write_image

    (tmp_path / "imgs").mkdir()
    for i in range(40):
        write_image(random_image(1, 6, 6, seed=i), tmp_path / "imgs" / f"{i:03d}.png")
    cfg = compose_config(
        [
            f"results_dir={tmp_path / 'results'}",
            "dataset=folder",
            f"dataset.root={tmp_path / 'imgs'}",
            "dataset.size=6",
            "dataset.channels=1",
            "model=independent_pixels",
            "logger=none",
            "progress=none",
            "protocol.kid_subsets=10",
        ]
    )
    record = train(cfg)
    assert record["status"] == "completed", record["message"]
    assert record["protocol"]["n_generated"] == 28 and record["data_floor"]["n_generated"] == 28
    assert "protocol.n_generated=1000 capped at 28" in capsys.readouterr().out
