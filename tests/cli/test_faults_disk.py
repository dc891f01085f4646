"""Real disk faults under results_dir (a regular file in the path, a read-only file system): one line
naming results_dir and the problem, exit status 2, nothing written, before Hydra creates its folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

import bench.cli.train as train_module
from bench.cli.compare import main as compare_main
from tests.helpers import REPO_ROOT

TINY = ["dataset=procedural", "budget=smoke", "progress=none"]
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-2000:]
    return lines[0]


def test_results_dir_under_a_regular_file_is_one_line_for_bench_train(tmp_path):
    (tmp_path / "file").write_text("data")
    results = tmp_path / "file" / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cli.train", f"results_dir={results}", *TINY],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert proc.returncode == 2
    assert _one_error_line(proc.stderr) == (
        f"error: results_dir={results}: cannot create {results / 'runs'} (Not a directory)"
    )
    assert (tmp_path / "file").read_text() == "data" and [p.name for p in tmp_path.iterdir()] == ["file"]


def test_results_dir_under_a_regular_file_is_one_line_for_sweeps(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("data")
    results = tmp_path / "file" / "results"
    monkeypatch.setattr(train_module, "hydra_main", lambda: pytest.fail("no job may start"))
    monkeypatch.setattr(sys, "argv", ["bench-train", "-m", f"results_dir={results}", "seed=0,1", *TINY])
    with pytest.raises(SystemExit) as exit_:
        train_module.main()
    assert exit_.value.code == 2 and "(Not a directory)" in _one_error_line(capsys.readouterr().err)
    with pytest.raises(SystemExit) as exit_:
        compare_main(["model=gan", "seed=0", f"results_dir={results}"])
    assert exit_.value.code == 2
    assert _one_error_line(capsys.readouterr().err) == (
        f"error: results_dir={results}: cannot create {results / 'compare'} (Not a directory)"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


#: Mounts a read-only tmpfs on $1 in a private mount namespace, runs bench-train with results_dir under
#: it, then says how many files it left there (the mount vanishes with the namespace).
READ_ONLY_RUN = """mount -t tmpfs -o ro tmpfs "$1" || exit 97
shift; "$@"; status=$?
echo "left: $(find "$MOUNTED" -mindepth 1 | wc -l)"; exit $status"""


def test_a_read_only_file_system_under_results_dir_is_one_line(tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("no `unshare` command to make a private mount namespace")
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("`unshare -m` is not permitted here (needs root or user namespaces)")
    mounted = tmp_path / "ro"
    mounted.mkdir()
    results = mounted / "results"
    proc = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            READ_ONLY_RUN,
            "sh",
            str(mounted),
            sys.executable,
            "-m",
            "bench.cli.train",
            f"results_dir={results}",
            *TINY,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**ENV, "MOUNTED": str(mounted)},
    )
    if proc.returncode == 97:
        pytest.skip(f"cannot mount a tmpfs in a private mount namespace: {proc.stderr.strip()}")
    assert proc.returncode == 2
    assert _one_error_line(proc.stderr) == (
        f"error: results_dir={results}: cannot create {results / 'runs'} (Read-only file system)"
    )
    assert proc.stdout.strip() == "left: 0"
