"""The cluster path without a cluster: a sweep through Hydra's `submitit_local` launcher (the same
plugin as `submitit_slurm`, running jobs as local processes), and a re-submitted job that resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT
from tests.helpers.reference_cache import warm_reference_cache

TINY = [
    "dataset=procedural",
    "budget=samples",
    "budget.value=256",
    "threads=1",
    "logger=none",
    "progress=lines",
    "protocol.n_generated=64",
    "protocol.iwae_k=4",
    "protocol.kid_subsets=10",
]


def _sweep(tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}  # the submitted jobs unpickle bench from here
    args = [
        "-m",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        "seed=0,1",
        f"results_dir={tmp_path / 'results'}",
        *TINY,
    ]
    return subprocess.run(
        [sys.executable, "-m", "bench.cli.train", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )


def _records(sweep: Path) -> dict[str, dict]:
    return {p.parent.name.split("__")[0]: json.loads(p.read_text()) for p in sweep.glob("*/result.json")}


@pytest.mark.slow
def test_submitit_local_sweep_completes_and_a_resubmitted_job_resumes(tmp_path):
    warm_reference_cache()
    sweep = tmp_path / "results" / "runs"
    first = _sweep(tmp_path)
    assert first.returncode == 0, (first.stdout + first.stderr)[-4000:]
    records = _records(sweep)
    assert sorted(records) == ["cnn_decoder-procedural-seed0", "cnn_decoder-procedural-seed1"], records
    assert all(r["status"] == "completed" for r in records.values()), {k: r["message"] for k, r in records.items()}
    assert len(list((sweep / ".submitit").glob("*/*_log.out"))) == 2  # each job ran as a submitit job

    # Pre-empted after its last checkpoint: the record is gone, the run folder and last.ckpt remain.
    # The same command line finds the same folder, resumes without training further, and skips seed 1.
    (resumed_dir,) = sweep.glob("cnn_decoder-procedural-seed0__*")
    (resumed_dir / "result.json").unlink()
    kept = next(sweep.glob("cnn_decoder-procedural-seed1__*")) / "result.json"
    kept_mtime = kept.stat().st_mtime_ns
    second = _sweep(tmp_path)
    assert second.returncode == 0, (second.stdout + second.stderr)[-4000:]
    again = _records(sweep)
    before = records["cnn_decoder-procedural-seed0"]["training"]
    after = again["cnn_decoder-procedural-seed0"]["training"]
    assert again["cnn_decoder-procedural-seed0"]["status"] == "completed"
    # the clock is restored from last.ckpt: a run trained again from scratch would measure a new time
    assert after["train_seconds"] == before["train_seconds"]
    assert (after["samples_seen"], after["optimizer_steps"]) == (before["samples_seen"], before["optimizer_steps"])
    assert kept.stat().st_mtime_ns == kept_mtime


@pytest.mark.parametrize("launcher", ["submitit_local", "submitit_slurm", "slurm_example"])
def test_cluster_launcher_configs_compose(launcher):
    from hydra import compose, initialize_config_dir

    from bench.config.choices import CONF_DIR

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    kind = "Local" if launcher == "submitit_local" else "Slurm"
    assert cfg.hydra.launcher._target_.endswith(f"submitit_launcher.{kind}Launcher")
    if launcher == "slurm_example":  # DDP needs one task per GPU; the example keeps them equal
        assert cfg.hydra.launcher.tasks_per_node == cfg.hydra.launcher.gpus_per_node
        assert cfg.hydra.launcher.max_num_timeout > 0  # a timed-out job is requeued and resumes
