"""Faults of the file system and of files handed to the CLIs: one line naming the file, no
traceback, and nothing half-written under a final name."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

import bench.config.run_folder
import bench.core.records
from bench.cli.evaluate import eval_main, rescore_main
from bench.config.run_folder import run_directory
from bench.core.errors import BenchError
from bench.core.records import RECORD_NAME, read_record, write_record
from bench.data import ImageDataModule
from bench.pipeline.train_task import train
from tests.helpers.cli_runs import DATASET, make_run, run_cli
from tests.helpers.configs import compose_config, tiny_overrides


def _failing_fsync(match: str):
    real = os.fsync

    def fsync(fd: int) -> None:
        if match in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    return fsync


def test_a_full_disk_while_checkpointing_fails_the_run_in_one_line_and_leaves_no_partial_file(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(bench.core.atomic.os, "fsync", _failing_fsync(".ckpt."))
    cfg = compose_config(tiny_overrides(tmp_path))
    record = train(cfg)
    run_dir = run_directory(cfg)
    assert record["status"] == "failed" and "No space left on device" in record["message"]
    assert ".ckpt: " in record["message"] and "\n" not in record["message"]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0]
    assert list((run_dir / "checkpoints").iterdir()) == []  # no partial checkpoint, no temp file
    assert read_record(run_dir)["status"] == "failed"


def test_a_full_disk_for_the_record_too_is_one_line_per_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench.core.atomic.os, "fsync", _failing_fsync(str(tmp_path)))
    cfg = compose_config(tiny_overrides(tmp_path))
    record = train(cfg)
    run_dir = run_directory(cfg)
    assert record["status"] == "failed"
    err = capsys.readouterr().err.strip().splitlines()
    assert f"error: could not write {run_dir / RECORD_NAME}: No space left on device" in err
    assert all(line.startswith("error: ") for line in err) and len(err) == 2
    assert not (run_dir / RECORD_NAME).exists() and not list(run_dir.rglob("*.tmp"))


def test_a_read_only_results_dir_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(args[0]))

    monkeypatch.setattr(bench.core.records.os, "open", read_only)
    cfg = compose_config(tiny_overrides(tmp_path / "results"))
    with pytest.raises(BenchError, match=r"results_dir=.*: cannot create the run folder .*Read-only file system"):
        train(cfg)
    assert not list((tmp_path / "results").rglob("*.*"))


def test_an_atomic_write_that_fails_keeps_the_old_file(tmp_path, monkeypatch):
    write_record(tmp_path, {"status": "completed"})
    before = (tmp_path / RECORD_NAME).read_bytes()
    monkeypatch.setattr(bench.core.atomic.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(errno.EROFS, "ro")))
    with pytest.raises(OSError) as err:
        write_record(tmp_path, {"status": "failed"})
    assert err.value.filename == str(tmp_path / RECORD_NAME)
    assert (tmp_path / RECORD_NAME).read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [RECORD_NAME]


@pytest.mark.parametrize("damage", ["truncated", "random", "empty", "missing_images"])
def test_bench_rescore_on_damaged_samples_is_one_line(damage, tmp_path, capsys):
    run_dir, _ = make_run(tmp_path, ImageDataModule(**DATASET))
    samples = run_dir / "samples.npz"
    data = samples.read_bytes()
    if damage == "truncated":
        samples.write_bytes(data[: len(data) // 2])
    elif damage == "random":
        samples.write_bytes(np.random.default_rng(0).bytes(4096))
    elif damage == "empty":
        samples.write_bytes(b"")
    else:
        np.savez(samples, levels=np.int64(4))
    before = (run_dir / RECORD_NAME).read_bytes()
    code, _, err = run_cli(rescore_main, [str(run_dir)], capsys)
    assert code == 2 and err.count("\n") == 1 and str(samples) in err and "Traceback" not in err
    assert (run_dir / RECORD_NAME).read_bytes() == before


@pytest.mark.parametrize(
    "config", [{"model": {"family": "independent_pixels"}}, {"dataset": "digits", "model": {}}, None]
)
def test_bench_eval_run_on_a_record_without_its_dataset_config_is_one_line(config, tmp_path, capsys):
    run_dir, _ = make_run(tmp_path, ImageDataModule(**DATASET))
    record = read_record(run_dir)
    write_record(run_dir, {**record, "config": config})
    code, out, err = run_cli(eval_main, ["--run", str(run_dir)], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and str(run_dir / RECORD_NAME) in err
    assert "config.dataset" in err


def test_bench_report_on_a_read_only_folder_is_one_line(tmp_path, monkeypatch, capsys):
    from bench.cli.report import main as report_main
    from tests.helpers.report_records import make_run as make_record

    make_record(tmp_path, "gan", 0)
    monkeypatch.setattr(
        bench.core.atomic.tempfile,
        "mkstemp",
        lambda **kw: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only file system", kw["dir"])),
    )
    with pytest.raises(SystemExit) as exit_:
        report_main([str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and err == f"error: {tmp_path}: Read-only file system\n"
    assert not (tmp_path / "report.md").exists()
