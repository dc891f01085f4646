"""FID's two sources of uncertainty in the report, and the data floor's interval (protocol v6)."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from bench.report import build_report
from bench.report.aggregate import data_floor, model_rows
from bench.report.collect import collect
from bench.report.tables import uncertainty_table
from tests.helpers.report_records import make_run

DRAWS, STDS = [14.0, 14.2, 13.9, 14.1, 14.3], [0.9, 1.1, 1.0, 0.8, 1.2]


def _runs(tmp_path, with_std: bool = True):
    for seed, (fid, std) in enumerate([(20.0, 1.0), (24.0, 2.0), (22.0, 1.5)]):
        make_run(
            tmp_path,
            "rnn",
            seed,
            fid=fid,
            protocol_version=6,
            floor_draws=DRAWS,
            floor_sampling_std=STDS if with_std else None,
            extra_metrics={"fid_sampling_std": std} if with_std else None,
        )
    (runs,) = collect(tmp_path).groups.values()
    return runs


def test_floor_interval_covers_a_new_draw_of_both_sides(tmp_path):
    floor = data_floor(_runs(tmp_path))
    rms = math.sqrt(sum(s * s for s in STDS) / len(STDS))
    assert floor["fid"].mean == pytest.approx(sum(DRAWS) / len(DRAWS))
    assert floor["fid"].half_width == pytest.approx(stats.norm.ppf(0.975) * rms)
    # the t-interval over the 5 overlapping draws was far narrower than one draw's sampling sd
    assert floor["fid"].half_width > 5 * stats.t.ppf(0.975, 4) * stats.tstd(DRAWS) / math.sqrt(5)
    older = data_floor(_runs(tmp_path / "v5", with_std=False))  # before v6: the t-interval over draws
    assert older["fid"].half_width == pytest.approx(stats.t.ppf(0.975, 4) * stats.tstd(DRAWS) / math.sqrt(5))


def test_uncertainty_table_separates_seed_and_sampling_spread(tmp_path):
    runs = _runs(tmp_path)
    table = uncertainty_table(model_rows(runs), data_floor(runs))
    (row, floor) = table.rows
    seed_sd = stats.tstd([20.0, 24.0, 22.0])
    within = math.sqrt((1.0 + 4.0 + 2.25) / 3)
    assert row[3] == f"{seed_sd:.2f}" and row[4] == f"{within:.2f}"
    assert row[5] == f"± {stats.t.ppf(0.975, 2) * seed_sd / math.sqrt(3):.2f}"
    assert floor[0].startswith("data floor") and "new draw and reference" in floor[-1]
    md = build_report(tmp_path).markdown.read_text()
    assert "### Uncertainty of FID" in md and "not the population distance" in md
