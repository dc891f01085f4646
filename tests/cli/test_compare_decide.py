"""`bench-compare decide=true`: seeds are added only to the models of undecided claims, up to max_seeds."""

from __future__ import annotations

import numpy as np

from bench.cli import compare
from bench.config.claims import settings_from
from bench.report.collect import collect
from tests.helpers.report_records import make_run

MEANS = {"gpt": 40.0, "cnn_decoder": 41.0, "gan": 10.0}  # gpt vs cnn_decoder: too close to decide


def _value(model: str, seed: int) -> float:
    return MEANS[model] + float(np.random.default_rng([seed, len(model)]).normal(0, 3))


def test_decide_adds_seeds_to_open_claims_only(tmp_path, monkeypatch):
    folders = [make_run(tmp_path, m, s, fid=_value(m, s)) for m in MEANS for s in range(3)]
    sweeps = []

    def fake_sweep(overrides):
        models = next(o for o in overrides if o.startswith("model=")).split("=", 1)[1].split(",")
        seed = int(next(o for o in overrides if o.startswith("seed=")).split("=", 1)[1])
        sweeps.append((tuple(models), seed))
        for model in models:
            make_run(tmp_path, model, seed, fid=_value(model, seed))
        return 0

    monkeypatch.setattr(compare, "run_sweep", fake_sweep)
    monkeypatch.setattr(compare, "run_folders", lambda jobs: [])
    settings = settings_from(
        {"claims": ["gpt < cnn_decoder on fid", "gan < gpt on fid"], "decide": True, "max_seeds": 6}, first=3
    )
    returncode, _ = compare.decide_rounds(["experiment=compare"], folders, tmp_path, settings)
    assert returncode == 0
    # gan vs gpt (30 apart) is decided at the first look; gpt vs cnn_decoder gets seeds 3, 4, 5 and stops
    assert sweeps == [(("cnn_decoder", "gpt"), 3), (("cnn_decoder", "gpt"), 4), (("cnn_decoder", "gpt"), 5)]
    (runs,) = collect(tmp_path).groups.values()
    seeds = {m: sorted(r.seed for r in runs if r.model == m) for m in MEANS}
    assert seeds == {"gpt": list(range(6)), "cnn_decoder": list(range(6)), "gan": [0, 1, 2]}
    sweeps.clear()  # resumed: the decisions are replayed from the records, nothing more to run
    assert compare.decide_rounds(["experiment=compare"], folders, tmp_path, settings) == (0, [])
    assert sweeps == []


def test_first_look_is_the_presets_seed_count():
    _, jobs = compare.job_overrides(["experiment=compare"])
    assert compare.first_seeds(jobs) == 3


def test_a_side_ahead_waits_for_the_other(tmp_path):
    from bench.report.claims import open_models

    for seed in range(5):  # gpt already has 5 seeds (another claim asked for them), cnn_decoder 3
        make_run(tmp_path, "gpt", seed, fid=_value("gpt", seed))
    for seed in range(3):
        make_run(tmp_path, "cnn_decoder", seed, fid=_value("cnn_decoder", seed))
    settings = settings_from({"claims": ["gpt < cnn_decoder on fid"], "decide": True, "max_seeds": 6}, first=3)
    (models,) = open_models(collect(tmp_path).groups, settings).values()
    assert models == {"cnn_decoder"}
