"""Records written before the package was layered (commit 41ea3c3) still load, keep their run
folder, and render: a results folder survives an upgrade of bench."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from bench.config.run_folder import config_hash, run_name
from bench.core.records import read_record
from bench.pipeline.run_record import completed_record
from bench.report.render import build_report

RECORDS = Path(__file__).parent / "records_41ea3c3"
FOLDERS = sorted(p.name for p in RECORDS.iterdir())


@pytest.mark.parametrize("folder", FOLDERS)
def test_an_earlier_record_loads_and_its_config_lands_in_the_same_folder(folder):
    record = read_record(RECORDS / folder)
    assert record is not None and record["status"] == "completed"
    cfg = OmegaConf.create(record["config"])
    assert config_hash(cfg) == record["config_hash"]  # so re-running that config skips it
    assert run_name(cfg) == folder
    assert completed_record(RECORDS / folder, cfg) == record


def test_earlier_records_render_with_their_numbers(tmp_path):
    shutil.copytree(RECORDS, tmp_path / "sweep")
    files = build_report(tmp_path / "sweep")
    report = files.markdown.read_text()
    for folder in FOLDERS:
        record = json.loads((RECORDS / folder / "result.json").read_text())
        row = next(line for line in report.splitlines() if line.startswith(f"| {record['model']} |"))
        assert f"| {record['metrics']['fid']:.3g} |" in row, row
    assert f"{len(FOLDERS)} completed run(s) in 1 comparison group(s)" in report
