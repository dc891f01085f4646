"""The report's table of selected checkpoints and tuning budgets (protocol v5).

A baseline fitted in closed form has one set of weights; a trained model names each table's rule
and how far into training its checkpoint was; a model given more tuning trials than another of its
group is flagged.
"""

from __future__ import annotations

from bench.report.aggregate import model_rows
from bench.report.collect import Run
from bench.report.tables import selection_table


def _record(model: str, stopped_by: str, trials: int | None, selected: int | None = 3000) -> dict:
    config = {"model": {"name": model, "tuning": {"trials": trials, "budget": {"kind": "samples", "value": 5e4}}}}
    if trials is None:
        config["model"].pop("tuning")
    return {
        "status": "completed",
        "model": model,
        "family": model,
        "dataset": "digits",
        "seed": 0,
        "config": config,
        "budget": {"kind": "samples", "value": 5e4, "stopped_by": stopped_by},
        "training": {"samples_seen": 9000},
        "checkpoint": {}
        if selected is None
        else {"selection": "best val/fid (validation)", "selected_at": {"samples_seen": selected}},
        "metrics": {},
    }


def test_the_report_names_each_tables_checkpoint_and_flags_an_unequal_tuning_budget(tmp_path):
    runs = [
        Run(tmp_path / "a", _record("gan", "samples", 8)),
        Run(tmp_path / "b", _record("gpt", "early_stopping", 20)),
        Run(tmp_path / "c", _record("copier", "closed_form", None, selected=None)),
    ]
    table, warnings = selection_table(model_rows(runs))
    rows = {row[0]: row for row in table.rows}
    assert rows["gan"][1] == "best val/fid (validation)" and rows["gan"][2] == "3,000 of 9,000"
    assert rows["copier"][1] == "closed form (one fit)" and rows["copier"][6] == "nothing to tune"
    assert rows["gpt"][5] == "early_stopping" and rows["gpt"][6].startswith("20 trials")
    assert len(warnings) == 1 and warnings[0].startswith("gpt had 20 tuning trial(s), more than the 8")
    equal = [Run(tmp_path / "a", _record("gan", "samples", 8)), Run(tmp_path / "b", _record("gpt", "samples", 8))]
    assert selection_table(model_rows(equal))[1] == []
