"""Claims: their grammar and settings, the fixed-sample verdicts against known answers, and the report's opening."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from bench.config.claims import CLAIMS_FILE, parse_claim, read_settings, settings_from, write_settings
from bench.config.compose import compose_all
from bench.config.run_folder import run_directory
from bench.core.errors import BenchError, ConfigError
from bench.report import build_report
from bench.report.claims import _seeds_needed, evaluate
from bench.report.collect import collect
from tests.helpers.report_records import make_run

FID_CLAIMS = {"claims": ["gpt < cnn_decoder on fid"], "claim_margin": {"fid": 10}}


def test_claim_grammar():
    claim = parse_claim("gpt < cnn_decoder on fid")
    assert (claim.better, claim.worse, claim.metric, claim.expected_sign) == ("gpt", "cnn_decoder", "fid", -1)
    reverse = parse_claim("cnn_decoder > gpt on fid")
    assert reverse == claim
    assert parse_claim("gan < gpt on inception_score").expected_sign == 1  # higher IS is better
    for bad, expected in [
        ("gpt << gan on fid", "a claim 'a < b on metric'"),
        ("gpt < gan on kid_std", "a metric with a direction"),
        ("gpt < gpt on fid", "two different"),
        (3, "a claim"),
    ]:
        with pytest.raises(ConfigError, match=expected) as err:
            parse_claim(bad)
        assert str(err.value).startswith("claims=")


def test_settings_validate_and_round_trip(tmp_path):
    settings = settings_from({**FID_CLAIMS, "decide": True, "max_seeds": 6}, first=3)
    write_settings(tmp_path, settings)
    assert read_settings(tmp_path) == settings
    for node, key in [
        ({"claims": "gpt < gan on fid"}, "claims"),
        ({"claim_margin": {"fid": -1}}, "claim_margin.fid"),
        ({"claim_margin": {"nope": 1}}, "claim_margin.nope"),
        ({"max_seeds": 2, "decide": True}, "max_seeds"),
        ({"max_seeds": 0}, "max_seeds"),
        ({"decide": "yes"}, "decide"),
    ]:
        with pytest.raises(ConfigError, match=key):
            settings_from(node)
    (tmp_path / CLAIMS_FILE).write_text(json.dumps({"claims": ["${oc.env:HOME} < gpt on fid"]}))
    with pytest.raises(BenchError, match=CLAIMS_FILE):  # a received file: parsed, never resolved
        read_settings(tmp_path)
    (tmp_path / CLAIMS_FILE).write_text("[not json")
    with pytest.raises(BenchError, match="not readable as JSON"):
        read_settings(tmp_path)


def test_claim_settings_in_the_config_change_no_hash():
    plain, claimed = compose_all(
        [[], ['claims=["gpt < gan on fid"]', "claim_margin={fid: 5}", "decide=true", "max_seeds=7"]]
    )
    assert run_directory(plain) == run_directory(claimed)
    assert list(claimed.claims) == ["gpt < gan on fid"]
    preset = compose_all([["experiment=compare"]])[0]
    assert "gan < gpt on fid" in preset.claims and preset.claim_margin.fid > 0


def _group(tmp_path, values: dict[str, list[float]], metric: str = "fid", family: dict | None = None):
    for model, per_seed in values.items():
        for seed, value in enumerate(per_seed):
            kwargs = {"fid": value} if metric == "fid" else {"fid": 10.0, "bpd": value}
            make_run(tmp_path, model, seed, family=(family or {}).get(model), **kwargs)
    return collect(tmp_path).groups


def test_fixed_verdicts_against_scipy_and_holm(tmp_path):
    gpt, vae, gan, rnn = (
        [40.0, 42.0, 41.0, 43.0],
        [60.0, 61.0, 59.0, 62.0],
        [41.0, 30.0, 52.0, 45.0],
        [70.0, 71.0, 69.0],
    )
    groups = _group(tmp_path, {"gpt": gpt, "cnn_decoder": vae, "gan": gan, "rnn": rnn})
    settings = settings_from(
        {"claims": ["gpt < cnn_decoder on fid", "gan < gpt on fid", "rnn < gpt on fid"], "claim_margin": {"fid": 10}}
    )
    results = {r.claim.text: r for r in evaluate(groups, settings)}
    raw = {
        "gpt < cnn_decoder on fid": stats.ttest_ind(gpt, vae, equal_var=False).pvalue,
        "gan < gpt on fid": stats.ttest_ind(gan, gpt, equal_var=False).pvalue,
        "rnn < gpt on fid": stats.ttest_ind(rnn, gpt, equal_var=False).pvalue,
    }
    order = sorted(raw, key=raw.get)  # Holm by hand: (m - i) * p_(i), running maximum, capped at 1
    expected, running = {}, 0.0
    for i, text in enumerate(order):
        running = max(running, min(1.0, (len(order) - i) * raw[text]))
        expected[text] = running
    for text, result in results.items():
        assert result.p_value == pytest.approx(raw[text])
        assert result.p_holm == pytest.approx(expected[text])
    assert results["gpt < cnn_decoder on fid"].verdict == "supported"
    assert results["gpt < cnn_decoder on fid"].difference == pytest.approx(np.mean(gpt) - np.mean(vae))
    assert results["rnn < gpt on fid"].verdict == "contradicted"
    assert results["gan < gpt on fid"].verdict == "undecided"
    low, high = results["gan < gpt on fid"].interval
    assert low < 0 < high


def test_tost_equivalence_and_seeds_needed(tmp_path):
    a, b = [50.0, 50.5, 49.5, 50.2], [50.1, 49.8, 50.4, 49.9]
    groups = _group(tmp_path, {"gpt": a, "cnn_decoder": b})
    (result,) = evaluate(groups, settings_from(FID_CLAIMS))
    # TOST: the larger of the two one-sided Welch p-values against -10 and +10
    lower = stats.ttest_ind(np.array(a) + 10, b, equal_var=False, alternative="greater").pvalue
    upper = stats.ttest_ind(np.array(a) - 10, b, equal_var=False, alternative="less").pvalue
    assert result.p_equivalence == pytest.approx(max(lower, upper))
    assert result.verdict == "equivalent"
    # undecided with pooled sd equal to the margin: 80% power at effect size 1, alpha 0.05 -> 17 per group
    noisy = _group(tmp_path / "n", {"gpt": [0.0, 10.0, 20.0], "cnn_decoder": [10.0, 20.0, 30.0]})
    (open_,) = evaluate(noisy, settings_from(FID_CLAIMS))
    assert open_.verdict == "undecided" and open_.seeds_needed == 17
    wide = replace(open_, margin=2000.0, note="")
    assert _seeds_needed(wide, 1) == (2, "")  # power at 2 seeds is already > 80%: no root to solve for
    no_margin = evaluate(noisy, settings_from({"claims": FID_CLAIMS["claims"]}))[0]
    assert no_margin.seeds_needed is None and "claim_margin.fid" in no_margin.note


def test_sides_match_families_then_models(tmp_path):
    groups = _group(
        tmp_path,
        {"gpt_mnist": [1.0, 1.1, 0.9], "vae_small": [3.0, 3.1, 2.9]},
        family={"gpt_mnist": "gpt", "vae_small": "cnn_decoder"},
    )
    (result,) = evaluate(groups, settings_from({"claims": ["gpt < vae_small on fid"]}))
    assert (result.better.model, result.worse.model) == ("gpt_mnist", "vae_small")
    assert result.verdict == "supported"


def test_report_opens_with_the_answer_and_reads_claims_json(tmp_path):
    _group(tmp_path, {"gpt": [40.0, 42.0, 41.0], "cnn_decoder": [60.0, 61.0, 59.0], "gan": [10.0, 50.0, 30.0]})
    write_settings(
        tmp_path, settings_from({"claims": ["gpt < cnn_decoder on fid", "gan < gpt on fid", "rnn < gpt on fid"]})
    )
    md = build_report(tmp_path).markdown.read_text()
    answer = md.index("## The answer")
    assert answer < md.index("## Claims") < md.index("## Group 1")
    opening = md[answer : md.index("## Claims")]
    assert "1 of 2 claim(s) decided" in opening
    assert "gpt beats cnn_decoder on FID (classifier features): 41.0 vs 60.0" in opening
    assert "gan vs gpt on FID (classifier features) is undecided at 3 seeds" in opening
    assert "rnn &lt; gpt on fid: not tested, no completed runs of rnn" in opening


def test_one_seed_or_many_seeds_without_decide_are_accepted():
    assert settings_from({}, first=1).first == 2  # a one-seed preset: the first look at two seeds
    many = settings_from({"max_seeds": 10}, first=12)
    assert (many.first, many.max_seeds) == (12, 12)
    with pytest.raises(ConfigError, match="max_seeds=10: expected an integer >= 12"):
        settings_from({"max_seeds": 10, "decide": True}, first=12)


def test_a_decide_folder_is_reported_by_the_sequential_design(tmp_path):
    a = [40.0, 42.0, 41.0, 40.5, 41.5]
    b = [60.0, 61.0, 59.0, 60.5, 59.5]
    _group(tmp_path, {"gpt": a, "cnn_decoder": b})
    write_settings(tmp_path, settings_from({**FID_CLAIMS, "decide": True, "max_seeds": 10}, first=3))
    (result,) = evaluate(collect(tmp_path).groups, read_settings(tmp_path))
    assert result.sequential and result.verdict == "supported" and result.seeds_tested == 3
    assert result.difference == pytest.approx(np.mean(a[:3]) - np.mean(b[:3]))  # the deciding look's seeds
    md = build_report(tmp_path).markdown.read_text()
    assert "supported at 3 seeds" in md and "group-sequential design" in md
    assert "41.0 vs 60.0" in md  # the means over those 3 seeds, not all 5
