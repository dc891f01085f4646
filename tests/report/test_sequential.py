"""The sequential decision on claims: boundaries, per-look tests, Holm recycling, `still_open`."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from bench.core.errors import ConfigError
from bench.report.sequential import ClaimSeries, Design, boundaries, decide, spending, still_open, welch

DESIGN = Design(first=3, max_seeds=10, alpha=0.05)


def test_boundaries_match_published_lan_demets_obrien_fleming_values():
    """Lan-DeMets O'Brien-Fleming-type boundaries, two-sided alpha = 0.05 (0.025 a side).

    Five equally spaced looks: 4.877, 3.357, 2.680, 2.290, 2.031, the values tabulated for this
    design in the Lan-DeMets literature and printed by R's ldbounds (`ldBounds(5)`, after
    Reboussin, DeMets, Kim & Lan 2000, Controlled Clinical Trials 21:190-207). Three equally spaced
    looks: 3.7103, 2.5114, 1.9930, from a public R test that checks a design against both rpact
    (`getDesignGroupSequential(kMax = 3, alpha = 0.025, sided = 1, typeOfDesign = "asOF")`) and
    gsDesign (`sfLDOF`) to 1e-4; the symmetric two-sided bound differs from that one-sided one by
    less than 1e-4 (crossing one side after the other is that unlikely).

    The 2.797, 1.977 often quoted for two looks are O'Brien & Fleming's (1979) original boundaries,
    not the spending-function ones (2.963, 1.969); two looks are checked below by quadrature.
    """
    five = boundaries((0.2, 0.4, 0.6, 0.8, 1.0), 0.05)
    assert five == pytest.approx((4.877, 3.357, 2.680, 2.290, 2.031), abs=2e-3)
    three = boundaries((1 / 3, 2 / 3, 1.0), 0.05)
    assert three == pytest.approx((3.7103, 2.5114, 1.9930), abs=1e-3)


def test_two_looks_agree_with_one_dimensional_quadrature():
    """For two looks the exit probability at the second is a 1-D integral: solve it with `quad`."""
    t1, alpha = 0.5, 0.05
    c1, c2 = boundaries((t1, 1.0), alpha)
    rho = math.sqrt(t1)
    spend2 = 2 * (spending(1.0, alpha / 2) - spending(t1, alpha / 2))

    def exit_second(c: float) -> float:
        def density(z1: float) -> float:
            s = math.sqrt(1 - rho**2)
            tails = stats.norm.sf((c - rho * z1) / s) + stats.norm.cdf((-c - rho * z1) / s)
            return stats.norm.pdf(z1) * tails

        return integrate.quad(density, -c1, c1, epsabs=1e-12)[0]

    assert c1 == pytest.approx(stats.norm.isf(spending(t1, alpha / 2)), abs=1e-9)
    assert c2 == pytest.approx(optimize.brentq(lambda c: exit_second(c) - spend2, 1.0, 4.0), abs=1e-3)


def test_alpha_spent_sums_to_alpha_by_monte_carlo():
    """Independent of the multivariate-normal integrals: simulate the looks' z statistics as
    standardised partial sums of seeds, Z_k = S_{n_k} / sqrt(n_k), and count boundary crossings."""
    z_bounds = np.array([stats.norm.isf(level / 2) for level in DESIGN.levels()])
    n = np.arange(DESIGN.first, DESIGN.max_seeds + 1)
    rng = np.random.default_rng(0)
    paths = 400_000
    sums = np.cumsum(rng.standard_normal((paths, DESIGN.max_seeds)), axis=1)[:, n - 1]
    crossed = np.abs(sums / np.sqrt(n)) >= z_bounds
    first_cross = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
    cumulative = [(first_cross[first_cross >= 0] <= k).sum() / paths for k in range(len(n))]
    expected = [2 * spending(x / DESIGN.max_seeds, DESIGN.alpha / 2) for x in n]
    se = math.sqrt(0.05 * 0.95 / paths)
    assert cumulative[-1] == pytest.approx(0.05, abs=4 * se)
    assert expected[-1] == pytest.approx(0.05, abs=1e-12)
    assert cumulative == pytest.approx(expected, abs=4 * se)


def test_levels_are_cached_increasing_and_smaller_for_a_smaller_alpha():
    levels = DESIGN.levels()
    assert DESIGN.levels() is levels and Design(3, 10).levels(0.05) is levels
    assert len(levels) == 8 and all(a < b for a, b in zip(levels, levels[1:]))
    assert all(half < full for half, full in zip(DESIGN.levels(0.025), levels))
    assert levels[-1] < 0.05


def test_invalid_designs_are_refused_with_the_key():
    with pytest.raises(ConfigError, match="max_seeds"):
        Design(first=3, max_seeds=2)
    with pytest.raises(ConfigError, match="first"):
        Design(first=1, max_seeds=10)
    with pytest.raises(ConfigError, match="alpha"):
        Design(first=3, max_seeds=10, alpha=1.5)


def test_a_huge_effect_is_supported_at_the_first_look():
    claim = ClaimSeries(a=[10.0, 10.2, 9.9], b=[20.0, 20.1, 19.8], expected=-1)
    (d,) = decide([claim], DESIGN)
    assert (d.verdict, d.seeds, d.level) == ("supported", 3, DESIGN.levels()[0])
    assert d.p_value <= d.level and d.difference == pytest.approx(-9.9333, abs=1e-3)
    low, high = d.interval
    ci = welch(claim.a, claim.b).confidence_interval(confidence_level=1 - d.level)
    assert (low, high) == pytest.approx((ci.low, ci.high)) and low < d.difference < high < 0


def test_a_huge_effect_against_the_claim_is_contradicted():
    (d,) = decide([ClaimSeries(a=[10.0, 10.2, 9.9], b=[20.0, 20.1, 19.8], expected=+1)], DESIGN)
    assert (d.verdict, d.seeds) == ("contradicted", 3)


def test_an_exact_tie_stays_undecided_until_max_seeds():
    values = [float(v) for v in (3, 1, 4, 1, 5, 9, 2, 6, 5, 3)]
    for n in range(3, 11):
        series = [ClaimSeries(values[:n], values[:n], expected=-1)]
        (d,) = decide(series, DESIGN)
        assert (d.verdict, d.seeds, d.p_value, d.difference) == ("undecided", n, 1.0, 0.0)
        assert d.level == DESIGN.levels()[n - 3]
        assert still_open([d], series, DESIGN) == ([0] if n < 10 else [])


def test_a_decided_claim_stays_decided_when_more_data_arrive():
    a, b = [10.0, 10.2, 9.9], [20.0, 20.1, 19.8]
    (before,) = decide([ClaimSeries(a, b, expected=-1)], DESIGN)
    # Seeds added later (for another claim sharing model A) point the other way.
    (after,) = decide([ClaimSeries(a + [40.0] * 7, b + [0.0] * 7, expected=-1)], DESIGN)
    assert before.verdict == "supported" and after == before


def _p_minus(shift: float, za: np.ndarray, zb: np.ndarray, target_p: float) -> float:
    return welch(tuple(za - shift), tuple(zb)).pvalue - target_p


def _borderline(target_p: float) -> ClaimSeries:
    """A claim (A lower) whose Welch p with ten seeds a side is `target_p`, and that no earlier look
    rejects even at alpha's boundaries (the first such draw of seeded normal noise)."""
    full = DESIGN.levels()
    for rng_seed in range(100):
        rng = np.random.default_rng(rng_seed)
        za, zb = rng.standard_normal(10), rng.standard_normal(10)
        zero = za.mean() - zb.mean()
        shift = optimize.brentq(_p_minus, zero, zero + 10, args=(za, zb, target_p))
        claim = ClaimSeries(za - shift, zb, expected=-1)
        if all(welch(claim.a[:n], claim.b[:n]).pvalue > full[n - 3] for n in range(3, 10)):
            return claim
    raise AssertionError("no draw stays below the earlier boundaries")


def test_holm_recycling_rejects_a_claim_at_alpha_only_after_the_other_claim():
    full, half = DESIGN.levels(0.05), DESIGN.levels(0.025)
    borderline = _borderline(0.028)  # fails alpha/2's last level, passes alpha's
    assert half[-1] < 0.028 < full[-1]
    huge = ClaimSeries([0.0, 0.1, -0.1] * 3 + [0.0], [10.0, 10.1, 9.9] * 3 + [10.0], expected=-1)
    tie = ClaimSeries([1.0, 2.0, 3.0] * 3 + [4.0], [1.0, 2.0, 3.0] * 3 + [4.0], expected=-1)

    # The other claim undecided: the borderline one is held to alpha / 2's boundaries.
    alone = decide([tie, borderline], DESIGN)[1]
    assert (alone.verdict, alone.seeds, alone.level) == ("undecided", 10, half[-1])
    # The other claim rejected at the first look: alpha's boundaries from then on.
    after = decide([huge, borderline], DESIGN)
    assert (after[0].verdict, after[0].seeds, after[0].level) == ("supported", 3, half[0])
    assert (after[1].verdict, after[1].seeds, after[1].level) == ("supported", 10, full[-1])
    # Both only at the last look: the stronger at alpha / 2, then, within the same look, the other at alpha.
    stronger = _borderline(0.01)
    both = decide([stronger, borderline], DESIGN)
    assert [(d.verdict, d.seeds, d.level) for d in both] == [("supported", 10, half[-1]), ("supported", 10, full[-1])]


def test_equivalence_is_declared_for_near_identical_tight_samples_with_a_wide_margin():
    a, b = [1.00, 1.01, 0.99], [1.00, 0.995, 1.005]
    (d,) = decide([ClaimSeries(a, b, expected=-1, margin=1.0)], DESIGN)
    assert (d.verdict, d.seeds, d.level) == ("equivalent", 3, DESIGN.levels()[0])
    assert d.p_value < d.level / 2 and -1.0 < d.interval[0] < d.interval[1] < 1.0
    # The same two one-sided Welch tests as statsmodels' TOST with unequal variances.
    weightstats = pytest.importorskip("statsmodels.stats.weightstats")
    p, _, _ = weightstats.ttost_ind(np.array(a), np.array(b), -1.0, 1.0, usevar="unequal")
    assert d.p_value == pytest.approx(p, rel=1e-6)
    # Without a margin, or with a narrow one, the same data stay undecided.
    (none,) = decide([ClaimSeries(a, b, expected=-1)], DESIGN)
    (narrow,) = decide([ClaimSeries(a, b, expected=-1, margin=0.01)], DESIGN)
    assert none.verdict == narrow.verdict == "undecided"


def test_still_open_lists_undecided_claims_below_max_seeds():
    huge = ClaimSeries([0.0, 0.1, -0.1], [10.0, 10.1, 9.9], expected=-1)
    tie_short = ClaimSeries([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], expected=-1)
    tie_full = ClaimSeries([1.0, 2.0] * 5, [2.0, 1.0] * 5, expected=-1)
    too_few = ClaimSeries([1.0, 2.0], [1.0, 2.0, 3.0], expected=-1)
    uneven = ClaimSeries([1.0, 2.0] * 5, [2.0, 1.0, 1.5], expected=-1)  # one side at max_seeds
    series = [huge, tie_short, tie_full, too_few, uneven]
    decisions = decide(series, DESIGN)
    assert [d.verdict for d in decisions] == ["supported"] + ["undecided"] * 4
    assert [d.seeds for d in decisions] == [3, 4, 10, 2, 3]
    assert decisions[3].level is None and decisions[3].interval is None and decisions[3].p_value is not None
    assert still_open(decisions, series, DESIGN) == [1, 3, 4]


def test_claim_series_refuses_bad_values():
    with pytest.raises(ValueError, match="expected"):
        ClaimSeries([1.0, 2.0], [1.0, 2.0], expected=0)
    with pytest.raises(ValueError, match="finite"):
        ClaimSeries([1.0, float("nan")], [1.0, 2.0], expected=-1)
    with pytest.raises(ValueError, match="margin"):
        ClaimSeries([1.0, 2.0], [1.0, 2.0], expected=-1, margin=0.0)


def test_a_first_look_significant_at_alpha_is_not_yet_decided():
    a, b = [1.0, 1.2, 0.9], [1.6, 1.9, 1.7]
    p = stats.ttest_ind(a, b, equal_var=False).pvalue
    assert DESIGN.levels()[0] < p < 0.05  # a fixed-sample test would call it; the first look may not
    (d,) = decide([ClaimSeries(a, b, expected=-1)], DESIGN)
    assert (d.verdict, d.level) == ("undecided", DESIGN.levels()[0])
