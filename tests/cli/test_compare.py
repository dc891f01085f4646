"""bench-compare's expansion of a sweep into jobs, without running any."""

from __future__ import annotations

import pytest

from bench.cli.compare import concurrency, main, run_folders, with_defaults
from bench.config.compose import job_overrides
from tests.helpers.configs import compose_config


def _jobs(*overrides: str):
    expanded = with_defaults(list(overrides))
    base, jobs = job_overrides(expanded)
    return expanded, base, jobs


def test_full_comparison_is_six_models_by_three_seeds():
    expanded, base, jobs = _jobs()
    assert expanded[0] == "experiment=compare"
    assert len(jobs) == 18
    models = {o.split("=")[1] for job in jobs for o in job if o.startswith("model=")}
    tuned = {f"{family}_tuned_digits" for family in ("cnn_decoder", "gan", "rnn", "gpt")}
    assert models == tuned | {"independent_pixels", "copier"}  # each family's config tuned at an equal budget
    assert base.budget.kind == "time" and base.budget.value == 180 and base.dataset.name == "digits"
    assert base.threads == 1 and base.sweep == "compare"
    assert base.hydra.launcher.n_jobs == 2 and "joblib" in base.hydra.launcher._target_
    assert concurrency(base, expanded) == ["concurrent_jobs=2"]


def test_smoke_preset_runs_one_seed_of_every_model():
    expanded, base, jobs = _jobs("budget=smoke")
    assert expanded[0] == "experiment=compare_smoke"
    assert len(jobs) == 6 and all("seed=0" in job for job in jobs)
    assert base.budget.value == 10 and base.sweep == "compare_smoke"


def test_command_line_sweeps_win_and_folders_are_distinct(tmp_path):
    expanded, base, jobs = _jobs("model=cnn_decoder,rnn", "seed=3", "hydra/launcher=basic", f"results_dir={tmp_path}")
    assert sorted(tuple(sorted(j for j in job if j.split("=")[0] in ("model", "seed"))) for job in jobs) == [
        ("model=cnn_decoder", "seed=3"),
        ("model=rnn", "seed=3"),
    ]
    assert concurrency(base, expanded) == ["concurrent_jobs=1"]  # the basic launcher runs one at a time
    folders = run_folders(jobs)
    assert len(set(folders)) == 2 and all(f.parent == tmp_path / "compare" for f in folders)
    assert concurrency(base, [*expanded, "concurrent_jobs=5"]) == []


def test_unknown_model_is_one_line_and_nothing_runs(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["model=cnn_decoder,nope", f"results_dir={tmp_path}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: model='nope': expected one of") and "\n" not in err
    assert not any(tmp_path.iterdir())


def test_the_comparisons_families_had_an_equal_tuning_budget():
    _, base, jobs = _jobs()
    models = sorted({o.split("=")[1] for job in jobs for o in job if o.startswith("model=")})
    tunings = [compose_config([f"model={m}"]).model.get("tuning") for m in models]
    trained = [t for t, m in zip(tunings, models) if m not in ("independent_pixels", "copier")]
    assert len(trained) == 4 and all(t is not None for t in trained)
    assert len({(t.trials, t.budget.kind, t.budget.value, t.statistic, t.dataset) for t in trained}) == 1
