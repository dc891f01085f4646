"""Decide a comparison's claims (`bench.config.claims`) from its records.

Each claim is tested in every group (dataset, protocol, budget, N) holding both of its sides,
once per pair of models matching them. With a fixed number of seeds: Welch's t-test of the
difference of means (two-sided, its 95% interval from `scipy.stats.ttest_ind`), Holm's correction
across every claim of the report (`statsmodels.stats.multitest`), and where the metric has a
margin, TOST for equivalence within ±margin (`statsmodels.stats.weightstats.ttost_ind`, Holm
corrected too). An undecided claim gets an estimate of the seeds per model that 80% power would
need for a difference equal to the margin, from the pooled seed variance
(`statsmodels.stats.power.TTestIndPower`, at the first Holm level alpha/m): an estimate for
planning, not post-hoc power at the observed effect. With `decide=true` the claims are decided by
the group-sequential design `bench-compare` added seeds under (`bench.report.sequential`),
replayed from the records in seed order.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower
from statsmodels.stats.weightstats import ttost_ind

from bench.config.claims import Claim, ClaimSettings
from bench.core.schema import METRIC_BY_KEY
from bench.report.collect import GroupKey, Run, value_at
from bench.report.sequential import ClaimSeries, Design, decide, still_open, welch

ALPHA = 0.05
POWER = 0.8


@dataclass(frozen=True)
class Side:
    """One model's per-seed values of the claim's metric, in seed order."""

    model: str
    seeds: tuple
    values: tuple[float, ...]


@dataclass
class Result:
    """One claim tested on one pair of models in one group."""

    claim: Claim
    group: GroupKey
    better: Side  # the side claimed better
    worse: Side
    margin: float | None
    difference: float | None = None  # mean(better) - mean(worse), at the seeds tested
    interval: tuple[float, float] | None = None  # 95% (repeated, under `decide`) interval of the difference
    p_value: float | None = None  # Welch, two-sided, uncorrected
    p_holm: float | None = None  # Holm-corrected across the report's claims
    p_equivalence: float | None = None  # TOST within ±margin, Holm-corrected
    level: float | None = None  # under `decide`: the look's nominal level the p-value was compared with
    seeds_tested: int | None = None  # seeds per model behind the verdict (under `decide`: at the deciding look)
    verdict: str = "undecided"
    seeds_needed: int | None = None  # per model, for 80% power at the margin (undecided claims)
    note: str = ""

    @property
    def sequential(self) -> bool:
        return self.level is not None


def _family(run: Run) -> str:
    return str(run.record.get("family"))


def _matching(runs: Sequence[Run], name: str) -> dict[str, list[Run]]:
    """Runs by model whose family is `name`, or else whose model is `name`."""
    for key in (_family, lambda r: r.model):
        matched: dict[str, list[Run]] = {}
        for run in runs:
            if key(run) == name:
                matched.setdefault(run.model, []).append(run)
        if matched:
            return matched
    return {}


def _side(model: str, runs: Sequence[Run], metric: str) -> Side:
    pairs = []
    for run in runs:
        value = value_at(run.record, METRIC_BY_KEY[metric].path)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            pairs.append((run.seed, float(value)))
    pairs.sort(key=lambda p: (not isinstance(p[0], int), p[0] if isinstance(p[0], int) else str(p[0])))
    return Side(model, tuple(s for s, _ in pairs), tuple(v for _, v in pairs))


def pairs_of(groups: Mapping[GroupKey, Sequence[Run]], settings: ClaimSettings) -> list[Result]:
    """Every claim on every pair of models matching its sides, per group holding both sides."""
    results = []
    for claim in settings.claims:
        for key, runs in groups.items():
            better, worse = _matching(runs, claim.better), _matching(runs, claim.worse)
            for model_a, runs_a in sorted(better.items()):
                for model_b, runs_b in sorted(worse.items()):
                    results.append(
                        Result(
                            claim=claim,
                            group=key,
                            better=_side(model_a, runs_a, claim.metric),
                            worse=_side(model_b, runs_b, claim.metric),
                            margin=settings.margins.get(claim.metric),
                        )
                    )
    return results


def untested(groups: Mapping[GroupKey, Sequence[Run]], settings: ClaimSettings) -> list[str]:
    """One line per claim that no group could test (a side has no runs anywhere)."""
    lines = []
    for claim in settings.claims:
        if any(_matching(runs, claim.better) and _matching(runs, claim.worse) for runs in groups.values()):
            continue
        missing = [name for name in (claim.better, claim.worse) if not any(_matching(r, name) for r in groups.values())]
        lines.append(f"{claim.text}: not tested, no completed runs of {' or '.join(missing) or 'both in one group'}")
    return lines


def evaluate(groups: Mapping[GroupKey, Sequence[Run]], settings: ClaimSettings) -> list[Result]:
    """The claims' results: fixed-sample tests, or the sequential design's verdicts under `decide`."""
    results = pairs_of(groups, settings)
    if settings.decide:
        _sequential(results, settings)
    else:
        _fixed(results)
    for result in results:
        if result.verdict == "undecided":
            result.seeds_needed, result.note = _seeds_needed(result, len(results))
    return results


def _welch(a: Sequence[float], b: Sequence[float]):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # zero spread: p is NaN, reported as untestable
        return welch(tuple(a), tuple(b))


def _testable(result: Result) -> str:
    a, b = result.better.values, result.worse.values
    if len(a) < 2 or len(b) < 2:
        return f"n too small to test ({len(a)} vs {len(b)} seeds; need ≥ 2 each)"
    if np.std(a) == 0 and np.std(b) == 0:
        return "no spread across seeds: the test is undefined"
    return ""


def _fixed(results: Sequence[Result]) -> None:
    tested = []
    for result in results:
        a, b = result.better.values, result.worse.values
        result.seeds_tested = min(len(a), len(b))
        result.difference = float(np.mean(a) - np.mean(b)) if a and b else None
        result.note = _testable(result)
        if result.note:
            continue
        test = _welch(a, b)
        if not math.isfinite(test.pvalue):
            result.note = "not testable"
            continue
        ci = test.confidence_interval(1 - ALPHA)
        result.p_value, result.interval = float(test.pvalue), (float(ci.low), float(ci.high))
        if result.margin is not None:
            m = result.margin
            result.p_equivalence = float(ttost_ind(np.asarray(a), np.asarray(b), -m, m, usevar="unequal")[0])
        tested.append(result)
    if not tested:
        return
    holm = multipletests([r.p_value for r in tested], alpha=ALPHA, method="holm")[1]
    equivalence = [r for r in tested if r.p_equivalence is not None]
    holm_eq = multipletests([r.p_equivalence for r in equivalence], method="holm")[1] if equivalence else []
    for result, p in zip(tested, holm):
        result.p_holm = float(p)
    for result, p in zip(equivalence, holm_eq):
        result.p_equivalence = float(p)
    for result in tested:
        if result.p_holm < ALPHA:
            sign = math.copysign(1, result.difference)
            result.verdict = "supported" if sign == result.claim.expected_sign else "contradicted"
        elif result.p_equivalence is not None and result.p_equivalence < ALPHA:
            result.verdict = "equivalent"


def series(result: Result) -> ClaimSeries:
    return ClaimSeries(result.better.values, result.worse.values, result.claim.expected_sign, result.margin)


def _sequential(results: Sequence[Result], settings: ClaimSettings) -> None:
    design = Design(first=settings.first, max_seeds=settings.max_seeds, alpha=ALPHA)
    for result, decision in zip(results, decide([series(r) for r in results], design)):
        result.verdict = decision.verdict
        result.seeds_tested = decision.seeds
        result.p_value = decision.p_value
        result.level = decision.level
        result.difference = decision.difference
        result.interval = decision.interval
        result.note = _testable(result) if decision.p_value is None else ""


def open_models(groups: Mapping[GroupKey, Sequence[Run]], settings: ClaimSettings) -> dict[GroupKey, set[str]]:
    """Per group, the models of claims still undecided under the sequential design that may get
    another seed (fewer than `max_seeds`): what `bench-compare decide=true` runs next."""
    results = pairs_of(groups, settings)
    design = Design(first=settings.first, max_seeds=settings.max_seeds, alpha=ALPHA)
    all_series = [series(r) for r in results]
    wanted: dict[GroupKey, set[str]] = {}
    for i in still_open(decide(all_series, design), all_series, design):
        sides = (results[i].better, results[i].worse)
        behind = min(len(side.values) for side in sides)  # a side ahead (seeds for another claim) waits
        wanted.setdefault(results[i].group, set()).update(s.model for s in sides if len(s.values) == behind)
    return wanted


def _seeds_needed(result: Result, claims: int) -> tuple[int | None, str]:
    a, b = result.better.values, result.worse.values
    if result.note:
        return None, result.note
    if result.margin is None:
        return None, f"set claim_margin.{result.claim.metric} for an estimate of the seeds needed"
    if len(a) < 2 or len(b) < 2:
        return None, "n too small for a variance"
    pooled = math.sqrt(((len(a) - 1) * np.var(a, ddof=1) + (len(b) - 1) * np.var(b, ddof=1)) / (len(a) + len(b) - 2))
    if pooled == 0:
        return None, "no spread across seeds"
    alpha, effect, power = ALPHA / max(claims, 1), result.margin / pooled, TTestIndPower()
    if power.power(effect_size=effect, nobs1=2, alpha=alpha, ratio=1.0) >= POWER:
        return 2, ""  # a margin many seed-sds wide: the solver has no root above the 2 seeds a test needs
    n = power.solve_power(effect_size=effect, alpha=alpha, power=POWER, ratio=1.0)
    return max(2, math.ceil(float(n))), ""
