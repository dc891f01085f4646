"""Quality against compute: FLOP curves, FID at equal training FLOPs, the Pareto front."""

import math

import pytest

from bench.report.aggregate import model_rows
from bench.report.collect import collect
from bench.report.compute import equal_compute, fid_at, flops_curve, pareto
from bench.report.render import build_report
from tests.helpers.report_records import make_run


def test_fid_at_is_linear_in_log_flops_and_never_extrapolates():
    curve = flops_curve(
        {"curves": {"quality": [{"train_flops": 1e11, "fid": 50.0}, {"train_flops": 1e9, "fid": 100.0}]}}
    )
    assert list(curve[0]) == [1e9, 1e11]  # sorted by FLOPs
    assert fid_at(curve, 1e10) == pytest.approx(75.0)  # the log-midpoint
    assert fid_at(curve, 1e9) == 100.0 and fid_at(curve, 1e11) == 50.0
    assert fid_at(curve, 9e8) is None and fid_at(curve, 1.1e11) is None


def test_curve_points_without_flops_use_images_seen_times_the_records_count():
    points = [{"samples_seen": 100, "fid": 9.0}, {"samples_seen": 300, "fid": 7.0}]
    older = {"curves": {"quality": points}, "timing": {"flops_per_train_sample": 2.0}}
    assert list(flops_curve(older)[0]) == [200.0, 600.0]
    counted = {**older, "training": {"flops_per_train_image": 3.0}}  # the count made before training wins
    assert list(flops_curve(counted)[0]) == [300.0, 900.0]
    assert flops_curve({"curves": {"quality": points}}) is None  # no FLOP count: no FLOP axis


def _run(root, model, seed, points, sample_flops, fid=30.0, closed_form=False):
    return make_run(
        root,
        model,
        seed,
        fid=fid,
        budget=("flops", 1e12),
        sections={
            "curves": {"quality": [{"train_flops": x, "samples_seen": 1, "fid": y} for x, y in points]},
            "timing": {"flops_per_sample": sample_flops},
            "budget": {"stopped_by": "closed_form" if closed_form else "flops"},
        },
    )


def test_equal_compute_reads_every_run_inside_the_range_all_of_them_cover(tmp_path):
    _run(tmp_path, "gan", 0, [(1e10, 100.0), (1e12, 20.0)], 1e6)
    _run(tmp_path, "gan", 1, [(1e10, 120.0), (1e12, 40.0)], 1e6)
    _run(tmp_path, "gpt", 0, [(1e11, 60.0), (1e13, 10.0)], 1e8)
    _run(tmp_path, "copier", 0, [], 0.0, closed_form=True)
    (runs,) = collect(tmp_path).groups.values()
    equal = equal_compute(model_rows(runs))
    # from the latest first measurement (gpt's 1e11) to the earliest last one (gan's 1e12)
    assert equal.levels[0] == pytest.approx(1e11) and equal.levels[-1] == pytest.approx(1e12)
    assert equal.levels[1] == pytest.approx(math.sqrt(1e11 * 1e12))
    assert [s.mean for s in equal.fid["gan"]] == pytest.approx([70.0, 50.0, 30.0])
    assert equal.fid["gan"][0].values == pytest.approx((60.0, 80.0))
    assert [s.mean for s in equal.fid["gpt"]] == pytest.approx([60.0, 47.5, 35.0])
    assert equal.without_curve == ("copier",)


def test_runs_whose_curves_do_not_overlap_have_no_equal_compute_table(tmp_path):
    _run(tmp_path, "gan", 0, [(1e9, 100.0), (1e10, 20.0)], 1e6)
    _run(tmp_path, "gpt", 0, [(1e11, 60.0), (1e12, 10.0)], 1e8)
    (runs,) = collect(tmp_path).groups.values()
    assert equal_compute(model_rows(runs)) is None


def test_pareto_front_of_fid_against_sampling_flops(tmp_path):
    for model, sample_flops, fid in (("gan", 1e6, 50.0), ("rnn", 1e8, 20.0), ("gpt", 1e8, 30.0), ("vae", 1e9, 25.0)):
        _run(tmp_path, model, 0, [(1e9, fid)], sample_flops, fid=fid)
    _run(tmp_path, "copier", 0, [], 0.0, fid=5.0, closed_form=True)  # free and good: a reference, not a choice
    (runs,) = collect(tmp_path).groups.values()
    points = {p.model: p for p in pareto(model_rows(runs))}
    assert [p.model for p in pareto(model_rows(runs))] == ["copier", "gan", "rnn", "gpt", "vae"]
    assert points["gan"].on_front and points["rnn"].on_front
    assert points["gpt"].dominated_by == ("rnn",) and points["vae"].dominated_by == ("rnn",)
    assert not points["copier"].on_front and not points["copier"].trained


def test_the_report_shows_quality_against_compute(tmp_path):
    for seed in (0, 1):
        _run(tmp_path, "gan", seed, [(1e10, 100.0 + seed), (1e12, 20.0 + seed)], 1e6, fid=25.0 + seed)
        _run(tmp_path, "gpt", seed, [(1e11, 60.0 + seed), (1e13, 10.0 + seed)], 1e8, fid=15.0 + seed)
    md = build_report(tmp_path).markdown.read_text()
    section = md[md.index("### Quality against compute") : md.index("### Selected checkpoints")]
    assert "| gan | 1e+06 | 25.5 ± 6.4 | on the front |" in section
    assert "| gpt | 1e+08 | 15.5 ± 6.4 | on the front |" in section
    assert "FID at 1e+11 training FLOPs (interpolated)" in section and "FID at 1e+12 training FLOPs" in section
    assert "| gan | 60.5 ± 6.4 | 40.5 ± 6.4 | 20.5 ± 6.4 |" in section
    for name in ("group1_quality_vs_flops.png", "group1_pareto.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
