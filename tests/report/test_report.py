"""bench-report on hand-made records: aggregation math, grouping, escaping, tolerance of bad files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from bench.cli.report import main as report_main
from bench.core.errors import BenchError
from bench.report import build_report
from bench.report.aggregate import model_rows, rank, summarize, welch
from bench.report.collect import collect
from tests.helpers.report_records import make_run


def test_summarize_matches_t_interval():
    values = [10.0, 12.0, 17.0]
    s = summarize(values + [None, float("nan")])
    assert s.n == 3
    assert s.mean == pytest.approx(13.0)
    expected = stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / math.sqrt(3)
    assert s.half_width == pytest.approx(expected)
    single = summarize([4.0])
    assert single.mean == 4.0 and single.half_width is None
    assert summarize([None]).mean is None


def test_welch_verdicts():
    far = welch("a", [1.0, 1.1, 0.9, 1.05], "b", [5.0, 5.2, 4.9, 5.1])
    assert far.significant and far.p_value < 0.05 and "significant" in far.verdict
    close = welch("a", [1.0, 2.0, 3.0], "b", [1.5, 2.5, 3.2])
    assert not close.significant and "not significant" in close.verdict
    assert close.p_value == pytest.approx(stats.ttest_ind([1, 2, 3], [1.5, 2.5, 3.2], equal_var=False).pvalue)
    small = welch("a", [1.0], "b", [2.0, 3.0])
    assert small.p_value is None and "n too small" in small.verdict


def test_rows_and_ranking_from_records(tmp_path):
    for seed, fid in enumerate([10.0, 12.0, 17.0]):
        make_run(tmp_path, "gpt", seed, fid=fid)
    for seed, fid in enumerate([30.0, 31.0, 29.0]):
        make_run(tmp_path, "gan", seed, fid=fid, bpd=None)
    make_run(tmp_path, "rnn", 0, fid=20.0)
    (group_runs,) = collect(tmp_path).groups.values()
    rows = {r.model: r for r in model_rows(group_runs)}
    assert rows["gpt"].summaries["fid"].mean == pytest.approx(13.0)
    assert rows["gpt"].summaries["fid"].half_width == pytest.approx(summarize([10, 12, 17]).half_width)
    assert rows["gan"].bpd_kind == "n/a" and rows["gan"].summaries["bits_per_dim"].mean is None
    ranking = rank(list(rows.values()), "fid")
    assert [r.model for r in ranking.rows] == ["gpt", "rnn", "gan"]
    assert "n too small" in ranking.next_comparisons[0].verdict  # rnn has one seed
    assert ranking.pairwise[("gpt", "gan")].significant


def test_pairwise_verdicts_are_holm_corrected(tmp_path):
    values = {"a": [1.0, 1.2, 0.9], "b": [1.5, 1.9, 1.4], "c": [2.4, 2.0, 2.9]}
    for model, per_seed in values.items():
        for seed, fid in enumerate(per_seed):
            make_run(tmp_path, model, seed, fid=fid)
    (runs,) = collect(tmp_path).groups.values()
    ranking = rank(model_rows(runs), "fid")
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    raw = [stats.ttest_ind(values[x], values[y], equal_var=False).pvalue for x, y in pairs]
    order = np.argsort(raw)
    holm, running = {}, 0.0
    for i, j in enumerate(order):  # Holm by hand: (m - i) p_(i), running maximum
        running = max(running, min(1.0, (3 - i) * raw[j]))
        holm[pairs[j]] = running
    for pair in pairs:
        comparison = ranking.pairwise[pair]
        assert comparison.p_value == pytest.approx(raw[pairs.index(pair)])
        assert comparison.p_holm == pytest.approx(holm[pair])
        assert comparison.significant == (holm[pair] < 0.05)
    assert raw[0] < 0.05 <= holm[("a", "b")]  # separable uncorrected, not after Holm
    assert not ranking.next_comparisons[0].significant


def test_report_tables_and_floor(tmp_path):
    for seed, fid in enumerate([10.0, 12.0, 17.0]):
        make_run(tmp_path, "gpt", seed, fid=fid, floor_fid=5.0, curve=[(1, 100.0 - seed), (5, 50.0), (9, 20.0 + seed)])
    for seed, fid in enumerate([11.0, 13.0, 16.0]):
        make_run(tmp_path, "rnn", seed, fid=fid, floor_fid=5.0, curve=[(2, 90.0), (8, 30.0 + seed)])
    files = build_report(tmp_path)
    md = files.markdown.read_text()
    assert "13.0 ± " in md  # gpt's mean FID with its CI
    assert "2.60 ± " in md  # 13 / floor 5, with the spread of gpt's seeds
    assert "data floor" in md
    assert "not separable at these seeds (Holm p=" in md and "not separable at n=3 seeds" in md
    pngs = {p.name for p in tmp_path.glob("*.png")}
    assert "group1_quality_vs_time.png" in pngs and "group1_quality_vs_speed.png" in pngs
    assert sum(name.startswith("group1_samples_") for name in pngs) == 2
    html = files.html.read_text()
    assert html.count("data:image/png;base64,") == 4
    assert '<img src="group1' not in html  # self-contained: no relative image links


def test_grouping_never_mixes(tmp_path):
    make_run(tmp_path, "gpt", 0, fid=10.0, dataset="digits")
    make_run(tmp_path, "gpt", 1, fid=12.0, dataset="digits")
    make_run(tmp_path, "gpt", 0, fid=500.0, dataset="mnist")
    make_run(tmp_path, "gpt", 0, fid=900.0, dataset="digits", protocol_version=2)
    make_run(tmp_path, "gpt", 0, fid=700.0, dataset="digits", extractor_sha="cd" * 32)
    make_run(tmp_path, "gpt", 0, fid=800.0, dataset="digits", budget=("samples", 2000))
    make_run(tmp_path, "gpt", 0, fid=600.0, dataset="digits", n_generated=500)
    found = collect(tmp_path)
    assert len(found.groups) == 6
    means = sorted(model_rows(runs)[0].summaries["fid"].mean for runs in found.groups.values())
    assert means == [11.0, 500.0, 600.0, 700.0, 800.0, 900.0]
    md = build_report(tmp_path).markdown.read_text()
    assert md.count("## Group ") == 6


def test_script_in_record_is_escaped(tmp_path):
    evil = "<script>alert(1)</script>"
    make_run(tmp_path, evil, 0, fid=10.0)
    make_run(tmp_path, "gan", 0, status="failed", message=f"boom {evil}")
    html = build_report(tmp_path).html.read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "boom &lt;script&gt;" in html


def test_markup_in_report_and_group_titles_is_escaped(tmp_path):
    evil = "<img src=x onerror=alert(1)>"
    root = tmp_path / evil  # the sweep folder names the report's title
    make_run(root, "gan", 0, fid=10.0, dataset=evil.replace("/", ""))  # a dataset name titles its group
    html = build_report(root).html.read_text()
    assert "<img src=x" not in html
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") >= 2  # the page title and the group title


def test_unreadable_and_partial_records_are_skipped(tmp_path, capsys):
    make_run(tmp_path, "gpt", 0, fid=10.0)
    truncated = tmp_path / "broken__00000000"
    truncated.mkdir()
    (truncated / "result.json").write_text('{"schema_version": 1, "status": "compl')
    partial = tmp_path / "partial__00000001"
    partial.mkdir()
    (partial / "result.json").write_text(json.dumps({"schema_version": 1, "status": "completed"}))
    with pytest.warns(UserWarning, match="skipping"):
        found = collect(tmp_path)
    assert len(found.skipped) == 2 and sum(len(r) for r in found.groups.values()) == 1
    assert report_main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("warning: skipping") == 2 and "1 completed" in out
    md = (tmp_path / "report.md").read_text()
    assert "Skipped record files" in md and "broken__00000000" in md


def test_failed_runs_and_subsets(tmp_path):
    make_run(tmp_path, "gpt", 0, fid=10.0, curve=[(1, 50.0), (2, 20.0)])
    make_run(tmp_path, "gan", 0, status="failed", message="RuntimeError: injected")
    files = build_report(tmp_path)
    md = files.markdown.read_text()
    assert "RuntimeError: injected" in md and "| failed |" in md
    assert files.completed == 1 and files.incomplete == 1
    only_failed = tmp_path / "only_failed"
    make_run(only_failed, "gan", 0, status="failed", message="exploded")
    assert "No completed runs" in build_report(only_failed).markdown.read_text()


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(BenchError, match="expected an existing folder"):
        build_report(tmp_path / "nope")


def test_curve_band_interpolates_seeds_on_shared_times():
    from bench.report.plots import mean_band

    a = (np.array([0.0, 10.0]), np.array([100.0, 0.0]))
    b = (np.array([0.0, 5.0, 20.0]), np.array([50.0, 50.0, 50.0]))
    grid, mean, half = mean_band([a, b])
    assert grid[0] == 0.0 and grid[-1] == 10.0  # only where both seeds have points
    np.testing.assert_allclose(mean, (100.0 - 10.0 * grid + 50.0) / 2)
    spread = np.abs((100.0 - 10.0 * grid) - 50.0) / np.sqrt(2)  # std (ddof=1) of two values
    np.testing.assert_allclose(half, stats.t.ppf(0.975, 1) * spread / np.sqrt(2))
    single_grid, single_mean, single_half = mean_band([b])
    assert single_half is None and list(single_mean) == [50.0, 50.0, 50.0]
