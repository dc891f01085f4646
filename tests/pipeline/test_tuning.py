"""Tuning: trials see the training and validation splits only, report their validation objective,
and leave a tuning record and a tuned model config that reproduces its trial.

The fast tests run one trial in-process with the test split sealed (reading it raises) and check
what `bench-tune` builds from trial records; the slow test runs `bench-tune` itself, two trials in
parallel worker processes that all have the test split sealed, and then the tuned config.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.cli.train import trial_objective
from bench.cli.tune import SWEEPER
from bench.config.compose import compose_with_hydra
from bench.core.errors import BenchError
from bench.pipeline.train_task import train
from bench.pipeline.tuning import best_trial, search_space, trials, tuning_record, write_tuned
from tests.helpers.configs import compose_config
from tests.helpers.sealed_test_split import TestSplitRead, seal, sealed_site

REPO = Path(__file__).resolve().parents[2]
TRIAL = ["model=gan", "budget=samples", "budget.value=1024", "protocol.selection_n=64", "progress=none"]
TRIAL += ["validation_every=2", "protocol.quality_curve.every_seconds=null"]


@pytest.fixture
def sealed(monkeypatch):
    from bench.data.datamodule import ImageDataModule

    class Sealed(ImageDataModule):
        pass

    seal(Sealed)
    monkeypatch.setattr("bench.pipeline.stages.ImageDataModule", Sealed)
    return Sealed


def test_sealing_works(sealed):
    dm = sealed("digits")
    assert len(dm.val_images) == 150
    with pytest.raises(TestSplitRead):
        dm.test_images  # noqa: B018


def test_a_trial_trains_and_validates_without_reading_the_test_split(tmp_path, sealed):
    record = train(compose_config([f"results_dir={tmp_path}", "validate_only=true", *TRIAL]))
    assert record["status"] == "validated", record["message"]
    assert "metrics" not in record and not (Path(tmp_path) / "runs" / record["run_id"] / "samples.npz").exists()
    value = record["checkpoint"]["selected_at"]["value"]
    assert value == min(row["val/fid"] for row in record["curves"]["validation"])
    assert trial_objective(record) == value
    # the same config again is a finished trial: skipped, same objective
    again = train(compose_config([f"results_dir={tmp_path}", "validate_only=true", *TRIAL]))
    assert again["created"] == record["created"]


def test_a_trial_that_did_not_validate_is_the_worst_objective():
    assert trial_objective(None) == math.inf
    assert trial_objective({"status": "diverged", "checkpoint": {"selected_at": {"value": 1.0}}}) == math.inf
    assert trial_objective({"status": "validated", "checkpoint": {"selected_at": {"value": None}}}) == math.inf


def _trial_record(folder: Path, run_id: str, lr: float, value: float | None, status: str = "validated") -> None:
    run = folder / run_id
    run.mkdir(parents=True)
    config = {"validate_only": True, "budget": {"kind": "samples", "value": 1024}, "model": {"module": {"lr": lr}}}
    record = {"schema_version": 1, "status": status, "run_id": run_id, "model": "gan", "config": config}
    record["checkpoint"] = {"selected_at": {"value": value, "step": 3, "samples_seen": 96, "train_seconds": 1.0}}
    (run / "result.json").write_text(json.dumps(record))


def test_the_best_trial_becomes_a_model_config_under_its_own_name_with_its_tuning_record(tmp_path):
    base = compose_with_hydra(
        ["experiment=tune", *SWEEPER, "model=gan", "+tune=gan", "budget=samples", "budget.value=1024"]
    )
    space = search_space(base)
    assert "model.module.lr" in space and space["model.module.lr"].startswith("tag(log")
    sweep = tmp_path / "sweep"
    _trial_record(sweep, "a", 1e-3, 40.0)
    _trial_record(sweep, "b", 2e-3, 30.0)
    _trial_record(sweep, "c", 3e-3, None, status="diverged")
    found = trials(sweep, base, space)
    assert [t["run_id"] for t in found] == ["a", "b", "c"] and best_trial(found)["run_id"] == "b"
    record = tuning_record(base, space, found, requested=3)
    path = write_tuned(tmp_path / "conf", base, record, "gan", sweep)
    written = yaml.safe_load(path.read_text())
    assert path.name == "gan_tuned_digits.yaml" and written["name"] == "gan_tuned_digits"
    assert written["module"]["lr"] == 2e-3 and written["net"]["_target_"] == "bench.models.gan.GANNet"
    assert written["tuning"]["trials"] == 2 and written["tuning"]["best_value"] == 30.0  # the diverged one is no trial
    saved = json.loads((sweep / "tuning.json").read_text())
    assert saved["space"] == space and [t["value"] for t in saved["trials"]] == [40.0, 30.0, None]
    assert saved["budget"] == {"kind": "samples", "value": 1024} and saved["seed"] == 0


def test_no_validated_trial_is_one_line():
    with pytest.raises(BenchError, match="no trial completed a validation"):
        best_trial([{"value": None}])


@pytest.mark.slow
def test_bench_tune_runs_trials_that_never_read_the_test_split_and_its_config_reproduces_the_best(tmp_path):
    site = sealed_site(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    args = ["budget=samples", "budget.value=1024", "protocol.selection_n=64", "validation_every=2"]
    tune = subprocess.run(
        [sys.executable, "-m", "bench.cli.tune", "model=gan", "trials=2", f"results_dir={tmp_path}/results", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert tune.returncode == 0, tune.stdout[-2000:] + tune.stderr[-2000:]
    record = json.loads((tmp_path / "results" / "tune_gan_digits" / "tuning.json").read_text())
    assert len(record["trials"]) == 2 and all(t["status"] == "validated" for t in record["trials"])
    assert record["trials"][0]["params"] != record["trials"][1]["params"]
    # bench ships its own gan_tuned_digits, which would shadow a file of that name in ./conf
    tuned = tmp_path / "conf" / "model" / "gan_tuned_digits_2.yaml"
    assert yaml.safe_load(tuned.read_text())["tuning"]["trials"] == 2
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.cli.train",
            "model=gan_tuned_digits_2",
            "validate_only=true",
            "threads=1",
            "protocol.quality_curve.every_seconds=null",
            "progress=none",
            f"results_dir={tmp_path}/again",
            *args,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    (path,) = (tmp_path / "again").rglob("result.json")
    reproduced = json.loads(path.read_text())["checkpoint"]["selected_at"]["value"]
    assert reproduced == pytest.approx(record["best"]["value"], rel=1e-6)


def test_a_trial_value_that_is_not_a_plain_value_is_refused_in_one_line(tmp_path):
    base = compose_with_hydra(
        ["experiment=tune", *SWEEPER, "model=gan", "+tune=gan", "budget=samples", "budget.value=1024"]
    )
    space = search_space(base)
    sweep = tmp_path / "sweep"
    _trial_record(sweep, "planted", "${oc.env:HOME}", 1.0)
    record = tuning_record(base, space, trials(sweep, base, space), requested=1)
    with pytest.raises(BenchError, match=r"planted: config model.module.lr='\$\{oc.env:HOME\}': expected a number"):
        write_tuned(tmp_path / "conf", base, record, "gan", sweep)
    assert not (tmp_path / "conf" / "model").exists()
