"""Hydra's flags in their documented form (`--cfg job`, `-c job`, `--info`, `--help`) on bench-train and
bench-compare: they print and exit 0, and nothing runs or is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT


def _run(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


@pytest.mark.parametrize(
    "flags, printed",
    [
        (["--cfg", "job"], "\nseed: 0\n"),
        (["-c", "job"], "\nseed: 0\n"),
        (["-p", "budget", "--cfg", "job", "budget=smoke"], "# @package budget\nkind: time\nvalue: 10\n"),
        (["--info", "defaults"], "Defaults List"),
        (["--help"], "bench-train is powered by Hydra"),
    ],
)
def test_bench_train_shows_what_a_flag_asks_for_and_runs_nothing(flags, printed, tmp_path):
    proc = _run("bench.cli.train", *flags, f"results_dir={tmp_path / 'results'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert printed in proc.stdout and "error" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_bench_compare_cfg_job_prints_a_jobs_config_and_runs_no_sweep(tmp_path):
    proc = _run("bench.cli.compare", "--cfg", "job", f"results_dir={tmp_path / 'results'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\nsweep: compare\n" in proc.stdout and "bench-compare:" not in proc.stdout + proc.stderr
    assert list(tmp_path.iterdir()) == []  # no results folder, no report


def test_bench_compare_help_exits_0_without_running(tmp_path):
    proc = _run("bench.cli.compare", "--help", f"results_dir={tmp_path / 'results'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("`bench-compare [overrides...]`") and "== Configuration groups ==" in proc.stdout
    assert list(tmp_path.iterdir()) == []
