"""Config mistakes: one line naming the key, nothing written in a single run; in a sweep the bad
job becomes a `failed` record, the other jobs run, and `bench-train -m` exits non-zero."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import bench.cli.train as train_module
from bench.config.choices import check_group_choices
from bench.core.errors import BenchError
from bench.core.records import read_record
from bench.pipeline.train_task import train
from tests.helpers import REPO_ROOT
from tests.helpers.configs import compose_config, tiny_overrides

#: override -> text the one-line message must hold (the key, and what is expected).
MISTAKES = {
    "~dataset.name": "dataset.name: missing",
    "~seed": "seed: missing",
    "~results_dir": "results_dir: missing",
    "~threads": "threads: missing",
    "~model.family": "model.family",
    "~budget": "config group 'budget' is missing",
    "+model.hiden=3": "model.hiden",
    "+model.net.hiden=3": "model.net: could not build",
    "budget.value=-1": "budget.value=-1.0: expected a positive number",
    "budget.value=0": "budget.value=0.0: expected a positive number",
    "budget.value=nan": "budget.value=nan: expected a positive number",
    "budget.value=lots": "budget.value",
    "dataset.source_args.levels=1": "dataset.source_args.levels=1: expected an integer >= 2",
    "model.batch_size=0": "model.batch_size=0: expected a positive integer",
    "threads=0": "threads=0: expected a positive integer",
    "seed=abc": "seed",
    "model.module.lr=-1": "model.module.lr=-1: expected a positive number",
    "model.module.lr=nan": "model.module.lr=nan: expected a positive number",
    "logger._target_=paper": "logger._target_='paper': expected the dotted path of a pytorch_lightning Logger",
}


@pytest.mark.parametrize("override", sorted(MISTAKES))
def test_a_single_run_config_mistake_is_one_line_and_writes_nothing(override, tmp_path):
    # no budget override, so that `~budget` composes: a mistake is caught before any training
    cfg = compose_config([f"results_dir={tmp_path}", "dataset=procedural", "progress=none", override])
    with pytest.raises(BenchError) as err:
        train(cfg)
    message = str(err.value)
    assert MISTAKES[override] in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "arg, message",
    [
        ("model=[a", r"^'model=\[a': could not parse the override \(no viable alternative at input '\[a'\); expected "),
        ("model=nope", "model='nope': expected one of "),
        ("dataset=mnistt", "dataset='mnistt': expected one of "),
        ("budget=forever", "budget='forever'"),
        ("model=rnn,nope", "model='nope'"),
    ],
)
def test_unknown_group_choices_are_one_line(arg, message):
    with pytest.raises(BenchError, match=message):
        check_group_choices([arg])


@pytest.mark.parametrize("key", ["results_dir", "sweep"])
def test_deleting_a_key_hydra_needs_is_one_line(key, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cli.train", f"~{key}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: {key}: this key is required (") and f"set it with {key}=" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "override, expected",
    [
        ("results_dir=null", "error: results_dir=None: expected a folder path"),
        ("sweep=", "error: sweep='': expected a folder name"),
    ],
)
def test_an_empty_output_folder_key_is_one_line_and_creates_nothing(override, expected, tmp_path, monkeypatch):
    from hydra._internal.utils import get_args_parser

    from bench.cli.train import check_command_line

    monkeypatch.chdir(tmp_path)  # where Hydra would have created a folder named `None`
    with pytest.raises(BenchError) as raised:
        check_command_line(get_args_parser().parse_args([override]))
    assert f"error: {raised.value}" == expected
    assert list(tmp_path.iterdir()) == []


def test_results_dir_under_a_regular_file_is_one_line(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    cfg = compose_config(tiny_overrides(tmp_path, f"results_dir={blocker / 'sub'}"))
    with pytest.raises(BenchError, match=r"results_dir=.*: cannot create the run folder .*Not a directory"):
        train(cfg)
    assert blocker.read_text() == "not a folder" and [p.name for p in tmp_path.iterdir()] == ["results"]


@pytest.mark.parametrize("override, written", [("model.batch_size=0", True), ("seed=abc", True), ("~seed", False)])
def test_a_sweep_job_that_fails_validation_is_recorded_and_listed(override, written, tmp_path, monkeypatch, capsys):
    listed = tmp_path / "incomplete.txt"
    monkeypatch.setattr(train_module, "_single_run", lambda: False)
    monkeypatch.setenv(train_module.INCOMPLETE_JOBS_ENV, str(listed))
    cfg = compose_config(tiny_overrides(tmp_path / "results", override))
    train_module.hydra_main(cfg)  # Hydra passes a given config straight to the task: no exit in a sweep
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    records = [json.loads(p.read_text()) for p in (tmp_path / "results").rglob("result.json")]
    if written:
        (record,) = records
        assert record["status"] == "failed" and err[0] == f"error: {record['message']}"
        assert read_record(next((tmp_path / "results").rglob("result.json"))) == record  # the report can read it
        assert listed.read_text() == record["run_id"] + "\n"
    else:
        assert records == [] and listed.read_text() == "a job (no record written)\n"


def test_bench_train_m_exits_non_zero_when_a_job_did_not_complete(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)  # the sweep's folder is created before the (stand-in) sweep runs
    monkeypatch.setattr(sys, "argv", ["bench-train", "-m", "seed=0,1"])
    monkeypatch.setattr(train_module, "hydra_main", lambda: train_module.note_incomplete_job("gan-digits-seed1__x"))
    with pytest.raises(SystemExit) as exit_:
        train_module.main()
    assert exit_.value.code == 1
    assert capsys.readouterr().err == "bench-train: 1 job(s) did not complete: gan-digits-seed1__x\n"
    assert train_module.INCOMPLETE_JOBS_ENV not in os.environ


@pytest.mark.slow
def test_a_sweep_records_the_invalid_job_runs_the_others_and_exits_non_zero(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.cli.train",
            "-m",
            "model.batch_size=0,64",
            *tiny_overrides(tmp_path, "model=independent_pixels", "logger=none"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    records = {
        r["model"] if r["status"] == "completed" else r["status"]: r
        for r in (json.loads(p.read_text()) for p in tmp_path.rglob("result.json"))
    }
    assert set(records) == {"independent_pixels", "failed"}
    assert records["failed"]["message"] == "model.batch_size=0: expected a positive integer"
    assert "error: model.batch_size=0: expected a positive integer" in proc.stderr.splitlines()
    assert f"bench-train: 1 job(s) did not complete: {records['failed']['run_id']}" in proc.stderr


def test_a_sweep_job_that_does_not_compose_is_named_and_skipped_while_the_others_run(tmp_path):
    # `model.net.hidden` exists for the VAE only: the GAN's job cannot compose
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.cli.train",
            "-m",
            "model=cnn_decoder,gan",
            "model.net.hidden=8",
            *tiny_overrides(tmp_path, "logger=none", "budget.value=128", "protocol.quality_curve.every_seconds=null"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error: sweep job")]
    assert (
        line.startswith("error: sweep job `model=gan model.net.hidden=8 ")
        and "`: the config does not compose (" in line
    )
    records = [json.loads(p.read_text()) for p in tmp_path.rglob("result.json")]
    assert [(r["model"], r["status"]) for r in records] == [("cnn_decoder", "completed")]  # nothing for the GAN
    assert not any(p.name.startswith("gan-") for p in tmp_path.rglob("*"))
    (summary,) = [x for x in proc.stderr.splitlines() if x.startswith("bench-train: 1 job(s) did not complete: ")]
    assert "model=gan model.net.hidden=8 " in summary and summary.endswith(" (does not compose)")


def test_a_sweep_whose_shared_overrides_do_not_compose_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench-train", "-m", "model=gan", "model.net.hidden=8", "seed=0,1"])
    monkeypatch.setattr(train_module, "hydra_main", lambda: pytest.fail("no job may start"))
    with pytest.raises(SystemExit) as exit_:
        train_module.main()
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: the config does not compose: Could not override 'model.net.hidden'")
