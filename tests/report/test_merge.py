"""Records from several folders (machines) merge into one report only where they compare."""

import json

import pytest

from bench.cli.report import main as report_main
from bench.config.claims import settings_from, write_settings
from bench.report.collect import apart, collect
from bench.report.render import build_report
from tests.helpers.report_records import make_run

LAPTOP = {"device": "cpu", "cpu_model": "AMD EPYC", "threads": 1, "concurrent_jobs": 2}
GPU_BOX = {"device": "cuda: NVIDIA H100", "cpu_model": "Intel Xeon", "threads": 4, "concurrent_jobs": 1}


def _two_machines(tmp_path, budget, env_b=GPU_BOX, **b_kwargs):
    a, b = tmp_path / "laptop", tmp_path / "cluster"
    for seed in (0, 1):
        make_run(a, "gpt", seed, fid=40.0 + seed, budget=budget, environment=LAPTOP)
        make_run(a, "gan", seed, fid=20.0 + seed, budget=budget, environment=LAPTOP)
    for seed in (2, 3):
        make_run(b, "gpt", seed, fid=42.0 + seed, budget=budget, environment=env_b, **b_kwargs)
        make_run(b, "gan", seed, fid=22.0 + seed, budget=budget, environment=env_b, **b_kwargs)
    return a, b


def test_time_budget_runs_of_different_device_classes_stay_apart_and_the_report_says_why(tmp_path, capsys):
    a, b = _two_machines(tmp_path, ("time", 180), env_b={**LAPTOP, "concurrent_jobs": 1})
    found = collect([a, b])
    assert sorted(len(runs) for runs in found.groups.values()) == [4, 4]
    first, second = sorted(found.groups, key=repr)
    (reason,) = apart(first, second)
    assert reason.startswith("device class under a time budget cpu: AMD EPYC · 1 thread(s) · 1 concurrent job(s)")
    assert report_main([str(a), str(b), "--out", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "kept apart from group 2: device class under a time budget" in out
    assert "2 group(s)" in out
    md = (tmp_path / "report" / "report.md").read_text()
    assert md.count("Kept apart from group") == 2 and "1 concurrent job(s)" in md


def test_samples_and_flops_budget_runs_merge_across_machines(tmp_path):
    for kind, value in (("samples", 50000), ("flops", 5e12)):
        a, b = _two_machines(tmp_path / kind, (kind, value))
        found = collect([a, b])
        (key,) = found.groups
        assert key.device_class is None
        runs = found.groups[key]
        assert sorted((r.model, r.seed) for r in runs) == [(m, s) for m in ("gan", "gpt") for s in range(4)]
        md = build_report([a, b], out_dir=tmp_path / kind / "report").markdown.read_text()
        assert "| gpt | gpt | 4 (0, 1, 2, 3) | 42.5 ± 3.8 |" in md


def test_runs_scored_with_different_extractors_stay_apart_with_the_reason_printed(tmp_path, capsys):
    a, b = _two_machines(tmp_path, ("flops", 5e12), extractor_sha="cd" * 32)
    assert len(collect([a, b]).groups) == 2
    report_main([str(a), str(b)])
    out = capsys.readouterr().out
    assert f"kept apart from group 1: reference extractor {'cd' * 6} vs {'ab' * 6}" in out
    assert f"kept apart from group 2: reference extractor {'ab' * 6} vs {'cd' * 6}" in out


def test_different_data_stays_apart_by_its_fingerprint(tmp_path):
    spec = {"name": "digits", "height": 8, "split_sha256": "e6" * 32}
    a, b = _two_machines(tmp_path, ("samples", 50000), sections={"dataset_spec": {**spec, "split_sha256": "00" * 32}})
    for path in a.glob("*/result.json"):
        record = json.loads(path.read_text())
        record["dataset_spec"] = spec
        path.write_text(json.dumps(record))
    groups = sorted(collect([a, b]).groups, key=repr)
    assert len(groups) == 2
    assert apart(groups[0], groups[1])[0].startswith("dataset fingerprint (shape, levels, split)")


def test_a_model_and_seed_found_in_two_folders_count_once(tmp_path, capsys):
    a, _ = _two_machines(tmp_path, ("samples", 50000))
    found = collect([a, a.parent])
    assert sum(len(runs) for runs in found.groups.values()) == 8  # the same files, read once
    copy = tmp_path / "copy"
    # the same seed trained on another machine (another config hash): not a new seed
    make_run(copy, "gpt", 0, fid=99.0, budget=("samples", 50000), environment=GPU_BOX, tag_extra="gpu")
    with pytest.warns(UserWarning, match="the same model and seed as"):
        found = collect([a, copy])
    (runs,) = found.groups.values()
    assert [r.record["metrics"]["fid"] for r in runs if r.model == "gpt" and r.seed == 0] == [40.0]
    assert any("the same model and seed as" in s for s in found.skipped)


def test_a_merged_report_carries_the_claims_of_its_folders(tmp_path):
    a, b = _two_machines(tmp_path, ("flops", 5e12))
    write_settings(a, settings_from({"claims": ["gan < gpt on fid"]}))
    write_settings(b, settings_from({"claims": ["gan < gpt on fid", "gpt < gan on fid"]}))
    md = build_report([a, b]).markdown.read_text()
    claims = md[md.index("## Claims") : md.index("## Group 1")]
    assert "| gan &lt; gpt on fid | digits · 5e+12 FLOPs · v1 · N=1000 | gan vs gpt | 4 vs 4 | 22.5 vs 42.5 |" in claims
    assert "| gpt &lt; gan on fid |" in claims and "contradicted" in claims
