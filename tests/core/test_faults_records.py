"""`bench-report` with malformed records: each is skipped with one `warning:` line naming the file
and the problem, and the report is still written for the good runs beside it."""

from __future__ import annotations

import json

import pytest

from bench.cli.report import main as report_main
from bench.core.records import FIELD_TYPES, RECORD_NAME, record_problem
from tests.helpers.report_records import make_run

#: A value of the wrong type for each top-level key (a string where an object belongs, and so on).
WRONG = {key: ("text" if dict in types else {"a": 1}) for key, types in FIELD_TYPES.items()}
WRONG["schema_version"] = "1"
CASES = {
    **{f"top-{key}": {key: value} for key, value in WRONG.items()},
    "status-unknown": {"status": "done"},
    "metric-object": {"metrics": {"fid": {"set": 1}}},
    "metrics-list": {"metrics": [1, 2]},
    "metric-text": {"metrics": {"fid": "low", "bits_per_dim": "2"}},
    "training-object": {"training": {"train_seconds": {"s": 1}}},
    "budget-value-text": {"budget": {"kind": "time", "value": "lots", "stopped_by": "time"}},
    "bool-status": {"status": True},
}


def _malformed(tmp_path, name: str, patch: dict):
    folder = make_run(tmp_path, "gpt", 5)  # a completed run, then damaged
    record = json.loads((folder / RECORD_NAME).read_text())
    record.update(patch)
    bad = folder.with_name(f"bad-{name}__00000000")
    folder.rename(bad)
    (bad / RECORD_NAME).write_text(json.dumps(record))
    return bad / RECORD_NAME


def test_every_top_level_key_is_type_checked():
    assert set(WRONG) == set(FIELD_TYPES)
    for key, value in WRONG.items():
        assert record_problem({"status": "completed", key: value}).startswith(key), key


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_malformed_record_is_skipped_and_the_report_still_written(name, tmp_path, capsys):
    make_run(tmp_path, "gan", 0, fid=12.0)
    make_run(tmp_path, "rnn", 0, status="failed", message="boom")
    bad = _malformed(tmp_path, name, CASES[name])
    assert report_main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(bad) in warnings[0], out
    assert "Traceback" not in out
    assert "1 completed, 1 not completed, 1 skipped" in out
    md = (tmp_path / "report.md").read_text()
    assert "| gan |" in md and "boom" in md and (tmp_path / "report.html").stat().st_size > 0


def test_a_record_that_is_not_an_object_is_skipped(tmp_path, capsys):
    make_run(tmp_path, "gan", 0)
    (tmp_path / "list__0").mkdir()
    (tmp_path / "list__0" / RECORD_NAME).write_text("[1, 2, 3]")
    (tmp_path / "empty__0").mkdir()
    (tmp_path / "empty__0" / RECORD_NAME).write_text("")
    assert report_main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("warning: skipping") == 2 and "list__0" in out and "empty__0" in out
    assert (tmp_path / "report.md").is_file()
