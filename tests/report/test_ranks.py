"""Average ranks across datasets: the Friedman test and Nemenyi's critical difference, on known answers."""

from __future__ import annotations

import pytest

from bench.report import build_report
from bench.report.aggregate import model_rows
from bench.report.collect import collect
from bench.report.ranks import average_ranks, critical_difference
from tests.helpers.report_records import make_run


def test_critical_difference_matches_demsar():
    # Demšar (2006), table 5(a): q_0.05 = 2.569 for k = 4; CD = q sqrt(k(k+1)/6N) = 1.25 for N = 14
    assert critical_difference(4, 14) == pytest.approx(2.569 * (20 / 84) ** 0.5, abs=2e-3)
    assert critical_difference(4, 14) == pytest.approx(1.25, abs=5e-3)


def _blocks(tmp_path, fids: dict[str, dict[str, float]]):
    for dataset, by_model in fids.items():
        for model, fid in by_model.items():
            for seed in range(2):
                make_run(tmp_path, model, seed, fid=fid + seed, dataset=dataset)
    return {key.dataset: model_rows(runs) for key, runs in collect(tmp_path).groups.items()}


def test_perfect_agreement_gives_the_maximum_statistic(tmp_path):
    fids = {d: {"gan": 10.0, "rnn": 20.0, "gpt": 30.0, "cnn_decoder": 40.0} for d in ("digits", "bars", "mnist")}
    ranks = average_ranks(_blocks(tmp_path, fids), "fid")
    average = dict(zip(ranks.treatments, ranks.average))
    assert average == {"gan": 1.0, "rnn": 2.0, "gpt": 3.0, "cnn_decoder": 4.0}
    assert ranks.statistic == pytest.approx(3 * (4 - 1))  # chi2_F = N(k-1) when every block agrees
    assert ("gan", "cnn_decoder") in ranks.separated()  # 3 ranks apart > CD(4, 3) = 2.71
    assert ("gan", "gpt") not in ranks.separated()


def test_report_shows_average_ranks_only_across_datasets(tmp_path):
    fids = {"digits": {"gan": 10.0, "rnn": 20.0, "gpt": 30.0}, "bars": {"gan": 12.0, "rnn": 11.0, "gpt": 30.0}}
    _blocks(tmp_path, fids)
    md = build_report(tmp_path).markdown.read_text()
    assert "## Average ranks across datasets (FID)" in md and "Friedman test over 2 groups and 3 treatments" in md
    single = tmp_path / "one"
    _blocks(single, {"digits": fids["digits"]})
    assert "Average ranks" not in build_report(single).markdown.read_text()
