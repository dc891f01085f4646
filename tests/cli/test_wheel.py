"""A wheel of this project carries every config and the search-path plugin, and runs from an
install that is not the source tree (as a plugin author's CI installs it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT
from tests.helpers.plugin_packages import pip_install, write_plugin


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """`pip wheel --no-deps --no-build-isolation` of a clean copy of the tree (no stale build/)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in ("bench", "hydra_plugins"):
        shutil.copytree(REPO_ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, src / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(root / "dist"),
            str(src),
        ],
        check=True,
        capture_output=True,
        cwd=root,
    )
    (built,) = (root / "dist").glob("bench-*.whl")
    return built


def test_wheel_contains_every_config_and_the_search_path_plugin(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "bench" / "conf").rglob("*.yaml")}
    assert len(configs) > 15 and configs <= names, sorted(configs - names)
    assert "hydra_plugins/bench_searchpath/bench_searchpath.py" in names
    assert not any(n.startswith(("tests/", "benchmarks/", "hydra_plugins/__init__")) for n in names)


def test_installed_wheel_trains_and_reports_a_plugin_model(wheel, tmp_path):
    site = tmp_path / "site"
    pip_install(wheel, site)
    pip_install(write_plugin(tmp_path / "plugin-src"), site)
    work = tmp_path / "work"  # neither the source tree nor its parent: only the install is importable
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import bench, hydra_plugins.bench_searchpath as p; print(bench.__file__); print(p.__file__)",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(f).is_relative_to(site) for f in where), where
    proc = subprocess.run(
        [
            str(site / "bin" / "bench-train"),
            "model=toy",
            f"results_dir={work}",
            "dataset=procedural",
            "budget=samples",
            "budget.value=256",
            "progress=none",
            "logger=none",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (record_file,) = work.rglob("result.json")
    record = json.loads(record_file.read_text())
    assert record["status"] == "completed" and record["model"] == "toy"
    assert record["config"]["trainer"] and record["config"]["protocol"]  # the default config composed
    report = subprocess.run(
        [str(site / "bin" / "bench-report"), str(work)], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    assert report.returncode == 0, report.stderr[-2000:]
    assert "toy (toyplug 0.3.0)" in (work / "report.md").read_text()  # templates ship too
    assert (site / "bin" / "bench-models").is_file()
