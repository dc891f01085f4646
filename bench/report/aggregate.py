"""Per-model statistics over seeds: mean, 95% confidence interval, and Welch's t-test ranking.

Intervals use the t-distribution with n-1 degrees of freedom (`scipy.stats.t`); pairwise tests
use Welch's unequal-variance t-test (`scipy.stats.ttest_ind(equal_var=False)`), Holm-corrected
over the pairs of a ranking (`statsmodels.stats.multitest.multipletests`). With a handful of seeds
most close calls cannot be resolved, and the verdicts say so rather than rank by noise.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

from bench.core.schema import FLOOR_KEYS, GUIDANCE_SWEEP_KEYS, METRIC_BY_KEY, METRICS, MetricSpec
from bench.evaluate.metrics.fid_jackknife import normal_interval
from bench.report.collect import Run, value_at

ALPHA = 0.05
CONFIDENCE = 0.95


NO_LIKELIHOOD = ("n/a", "none", "", None)


@dataclass(frozen=True)
class Summary:
    """Mean and 95% CI half-width of finite values; `half_width` is None when n < 2."""

    values: tuple[float, ...]
    mean: float | None
    half_width: float | None
    std: float | None

    @property
    def n(self) -> int:
        return len(self.values)


def summarize(values: Iterable[Any]) -> Summary:
    """Mean ± t-based 95% CI of the finite numbers in `values` (None, NaN and inf are dropped)."""
    finite = tuple(
        float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    )
    if not finite:
        return Summary((), None, None, None)
    mean = float(np.mean(finite))
    if len(finite) < 2:
        return Summary(finite, mean, None, None)
    std = float(np.std(finite, ddof=1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(finite) - 1) * std / math.sqrt(len(finite)))
    return Summary(finite, mean, half, std)


@dataclass
class ModelRow:
    """One model's runs in one group and their summaries."""

    model: str
    family: str
    seeds: list[Any]
    runs: list[Run]
    summaries: dict[str, Summary]
    bpd_kind: str  # "exact", "bound" or "n/a"
    fid_vs_floor: float | None = None
    fid_vs_floor_half_width: float | None = None  # 95% CI, from the model's and the floor's spread


def _bpd_kind(runs: Sequence[Run]) -> str:
    kinds = {value_at(r.record, ("metrics", "bits_per_dim_kind")) for r in runs}
    kinds = {k for k in kinds if k not in NO_LIKELIHOOD}
    return "/".join(sorted(map(str, kinds))) if kinds else "n/a"


def model_rows(runs: Sequence[Run]) -> list[ModelRow]:
    """Rows per model name (sorted by name) over the completed runs of one group."""
    by_model: dict[str, list[Run]] = {}
    for run in runs:
        by_model.setdefault(run.model, []).append(run)
    rows = []
    for model, model_runs in sorted(by_model.items()):
        kind = _bpd_kind(model_runs)
        summaries = {}
        for metric in METRICS:
            values = [value_at(r.record, metric.path) for r in model_runs]
            if metric.key == "bits_per_dim" and kind == "n/a":
                values = []
            summaries[metric.key] = summarize(values)
        family = sorted({family_label(r.record) for r in model_runs})  # plugins: with package and version
        rows.append(
            ModelRow(
                model=model,
                family="/".join(family),
                seeds=sorted((r.seed for r in model_runs), key=str),
                runs=list(model_runs),
                summaries=summaries,
                bpd_kind=kind,
            )
        )
    return rows


def data_floor(runs: Sequence[Run]) -> dict[str, Summary]:
    """The floor's metrics: mean ± 95% CI over its independent draws of N training images.

    Records of protocol version 2 carry each draw (`data_floor.draws`); runs evaluated under one
    protocol share one floor, and identical copies are counted once so they do not shrink the
    interval. A version-1 floor is one draw (its own mean, no interval).
    """
    distinct: dict[str, dict] = {}
    for run in runs:
        floor = run.record.get("data_floor")
        if isinstance(floor, dict) and floor:
            distinct.setdefault(json.dumps(floor, sort_keys=True, default=str), floor)
    draws = [
        draw
        for floor in distinct.values()
        for draw in (floor.get("draws") if isinstance(floor.get("draws"), list) else [floor])
    ]
    if not draws:
        return {}
    summaries = {key: summarize(d.get(key) for d in draws) for key in FLOOR_KEYS}
    summaries["fid"] = floor_fid(draws, summaries["fid"])
    return summaries


def floor_fid(draws: Sequence[dict], over_draws: Summary) -> Summary:
    """The floor's FID: since protocol version 6 its interval is the mean over draws ± 1.96 of a
    draw's within-run sampling sd (a jackknife over both the real draw and the reference images),
    because the draws share most of their images and all of the reference set, so their spread
    understates what a new draw of both would give. Earlier floors keep the t-interval over draws."""
    stds = [d.get("fid_sampling_std") for d in draws]
    if over_draws.mean is None or not stds or not all(isinstance(v, (int, float)) for v in stds):
        return over_draws
    low, high = normal_interval(over_draws.mean, stds)
    return Summary(over_draws.values, over_draws.mean, (high - low) / 2, over_draws.std)


@dataclass(frozen=True)
class GuidanceSweep:
    """One model's guidance sweep over its seeds: per weight w, a `Summary` of each of
    `GUIDANCE_SWEEP_KEYS`; or why the sweep does not apply to it."""

    points: dict[float, dict[str, Summary]]
    not_applied: str | None = None


def guidance_sweep(row: ModelRow) -> GuidanceSweep | None:
    """The row's guidance sweep (None when no run of it has one)."""
    sweeps = [r.record.get("guidance_sweep") for r in row.runs]
    sweeps = [s for s in sweeps if isinstance(s, dict)]
    if not sweeps:
        return None
    by_weight: dict[float, list[dict]] = {}
    for sweep in sweeps:
        for point in sweep.get("points") or []:
            if isinstance(point, dict) and isinstance(point.get("guidance"), (int, float)):
                by_weight.setdefault(float(point["guidance"]), []).append(point)
    if not by_weight:
        reasons = sorted({str(s.get("reason") or "no points recorded") for s in sweeps})
        return GuidanceSweep({}, "; ".join(reasons))
    return GuidanceSweep(
        {
            w: {k: summarize(p.get(k) for p in points) for k in GUIDANCE_SWEEP_KEYS}
            for w, points in sorted(by_weight.items())
        }
    )


def ratio(a: Summary, b: Summary) -> tuple[float | None, float | None]:
    """`a.mean / b.mean` and its 95% CI half-width by first-order error propagation (the two
    relative half-widths added in quadrature); (None, None) where a mean is missing or b's is 0."""
    if a.mean is None or b.mean in (None, 0.0):
        return None, None
    value = a.mean / b.mean
    if a.half_width is None and b.half_width is None:
        return value, None
    relative = [h / abs(m) for h, m in ((a.half_width, a.mean), (b.half_width, b.mean)) if h is not None and m]
    return value, abs(value) * math.sqrt(sum(r * r for r in relative))


def attach_floor_ratio(rows: Sequence[ModelRow], floor: dict[str, Summary]) -> None:
    """Set each row's FID as a multiple of the floor's FID, with the uncertainty of both."""
    for row in rows:
        row.fid_vs_floor, row.fid_vs_floor_half_width = (
            ratio(row.summaries["fid"], floor["fid"]) if floor.get("fid") else (None, None)
        )


@dataclass(frozen=True)
class Comparison:
    """Welch's t-test between two models on one metric (`p_holm`: corrected over a ranking's pairs)."""

    a: str
    b: str
    p_value: float | None
    verdict: str
    significant: bool
    p_holm: float | None = None


def welch(a: str, a_values: Sequence[float], b: str, b_values: Sequence[float]) -> Comparison:
    """Compare two models' per-seed values; says plainly when n is too small to test."""
    if len(a_values) < 2 or len(b_values) < 2:
        n = min(len(a_values), len(b_values))
        return Comparison(a, b, None, f"n too small to test (n={n}; need ≥ 2 seeds each)", False)
    if np.std(a_values) == 0 and np.std(b_values) == 0:
        if np.mean(a_values) == np.mean(b_values):
            return Comparison(a, b, None, "not testable (identical values)", False)
        return Comparison(a, b, None, "no spread across seeds; the test is undefined", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # zero spread: reported as untestable below
        p = float(stats.ttest_ind(a_values, b_values, equal_var=False).pvalue)
    if not math.isfinite(p):
        return Comparison(a, b, None, "not testable", False)
    if p < ALPHA:
        return Comparison(a, b, p, f"significant (p={p:.3g})", True)
    return Comparison(a, b, p, f"not significant (p={p:.3g})", False)


@dataclass
class Ranking:
    """Models ordered by one metric, each compared with the next one down."""

    metric: MetricSpec
    rows: list[ModelRow]
    next_comparisons: list[Comparison]  # rows[i] vs rows[i+1]
    pairwise: dict[tuple[str, str], Comparison] = field(default_factory=dict)

    @property
    def any_tested(self) -> bool:
        return any(c.p_value is not None for c in self.pairwise.values())

    @property
    def conclusion(self) -> str:
        """One plain sentence on what the ranking can and cannot tell apart."""
        if len(self.rows) < 2:
            return "Only one model has this metric; there is nothing to rank."
        tested = [c for c in self.next_comparisons if c.p_value is not None]
        significant = [c for c in self.next_comparisons if c.significant]
        n_text = self.n_text
        pairs = len(self.pairwise)
        if not tested:
            return (
                f"No pair of neighbours could be tested ({n_text} seeds per model): the order is "
                f"by mean only and says nothing about significance."
            )
        if not significant:
            return (
                f"No neighbouring pair differs at Holm-corrected p<{ALPHA} over the {pairs} pairs ({n_text} seeds "
                f"per model): these models are not separable at {n_text} seeds; the order is by mean only."
            )
        return (
            f"{len(significant)} of {len(self.next_comparisons)} neighbouring pairs differ at Holm-corrected "
            f"p<{ALPHA} over the {pairs} pairs ({n_text} seeds per model); the other neighbours are not "
            f"separable at {n_text} seeds."
        )

    @property
    def n_text(self) -> str:
        ns = sorted({r.summaries[self.metric.key].n for r in self.rows})
        return f"n={ns[0]}" if len(ns) == 1 else f"n={ns[0]}–{ns[-1]}"


def rank(rows: Sequence[ModelRow], key: str) -> Ranking:
    """Rows that have `key`, best first, with Welch's tests between neighbours and all pairs."""
    metric = METRIC_BY_KEY[key]
    ranked = [r for r in rows if r.summaries[key].mean is not None]
    ranked.sort(key=lambda r: r.summaries[key].mean, reverse=metric.better == "higher")

    def test(a: ModelRow, b: ModelRow) -> Comparison:
        return welch(a.model, a.summaries[key].values, b.model, b.summaries[key].values)

    pairwise = holm({(a.model, b.model): test(a, b) for i, a in enumerate(ranked) for b in ranked[i + 1 :]})
    neighbours = [pairwise[(a.model, b.model)] for a, b in zip(ranked, ranked[1:])]
    return Ranking(metric=metric, rows=ranked, next_comparisons=neighbours, pairwise=pairwise)


def holm(pairwise: dict[tuple[str, str], Comparison]) -> dict[tuple[str, str], Comparison]:
    """The comparisons with Holm-corrected p-values over every tested pair, and verdicts by them."""
    tested = [key for key, c in pairwise.items() if c.p_value is not None]
    if not tested:
        return pairwise
    corrected = multipletests([pairwise[k].p_value for k in tested], alpha=ALPHA, method="holm")[1]
    out = dict(pairwise)
    for key, p in zip(tested, corrected):
        c, p = pairwise[key], float(p)
        if p < ALPHA:
            verdict = f"separable (Holm p={p:.3g}; raw {c.p_value:.3g})"
        else:
            verdict = f"not separable at these seeds (Holm p={p:.3g}; raw {c.p_value:.3g})"
        out[key] = Comparison(c.a, c.b, c.p_value, verdict, p < ALPHA, p)
    return out


def family_label(record: dict) -> str:
    """A record's family with the plugin package that provided it: 'diffusion (bench-diffusion 0.1.0)'."""
    family = str(record.get("family", ""))
    source = (record.get("environment") or {}).get("model_source") or {}
    if not source or source.get("builtin", True):
        return family
    revision = f", {source['git_revision'][:10]}" if source.get("git_revision") else ""
    return f"{family} ({source.get('package')} {source.get('version')}{revision})"
