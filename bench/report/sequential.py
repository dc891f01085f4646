"""Sequential decisions on claims ("A is better than B on a metric"), one seed at a time.

`bench-compare decide=true` adds seeds until every claim is decided or has `max_seeds` seeds per
model. Testing after every seed at the fixed-sample level would inflate the false-positive rate
(0.14 instead of 0.05 for one claim and 3 to 10 seeds, 0.40 for four claims; see
`benchmarks/sequential_error.py`), so the looks follow a group-sequential design:

- Looks at n = first, ..., max_seeds seeds per model; information fraction t = n / max_seeds.
- Symmetric two-sided boundaries by Lan-DeMets alpha spending with the O'Brien-Fleming-type
  function 2 - 2 Phi(z_{1-a/2} / sqrt(t)) spending a = alpha/2 on each side (the convention of
  the published tables, see `boundaries`), computed under the canonical joint distribution of the
  z statistics (corr(Z_i, Z_j) = sqrt(t_i / t_j)) with `scipy.stats.multivariate_normal`.
- Each look runs Welch's t-test on the first n values of each side and compares its two-sided
  p-value with the look's nominal level 2 (1 - Phi(c_k)): this carries the z boundary over to the
  t statistic's small-sample distribution.
- Several claims: Holm's procedure recycled over looks (Ye, Li, Jiang & Wang 2013, "Sequential
  testing of multiple hypotheses using Holm's procedure with group sequential designs"): with m
  claims of which r are rejected so far, an undecided claim is tested with the boundaries of level
  alpha / (m - r), repeated within a look until no new rejection.
- Equivalence within +-margin uses Bonferroni boundaries (level alpha / m, no recycling).

The compare loop, the report (replaying from the per-seed values) and the simulation all call
`decide`, so they cannot disagree. Simulated with 3 to 10 seeds, alpha = 0.05: a false claim is
declared in 0.051 of comparisons with normal seed noise (Welch's t statistics are a little less
correlated across looks than the z's the boundaries assume, as Jennison & Turnbull note for this
"significance level" approach), 0.040 with heavy-tailed t_3 noise, and 0.04 familywise for four
claims; see the benchmark for power and seeds used.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from bench.core.errors import ConfigError

_MVN_SEED = 20130101


def spending(t: float, alpha: float) -> float:
    """Cumulative alpha spent on one side by information fraction `t`, O'Brien-Fleming type:
    2 - 2 Phi(z_{1-alpha/2} / sqrt(t)) for that side's level `alpha` (gsDesign's `sfLDOF`)."""
    return float(2 * stats.norm.sf(stats.norm.isf(alpha / 2) / math.sqrt(t)))


def _excess_exit(ck: float, inner: np.ndarray, cov: np.ndarray, spend: float) -> float:
    """P(|Z_j| < c_j for the earlier looks, |Z_k| >= ck) minus the alpha this look may spend."""
    # By symmetry, leaving through the upper side is half of |Z_k| >= ck. Genz's randomised
    # quasi-Monte Carlo with a fixed seed is reproducible; an absolute error of 1e-3 of the spend
    # moves ck by well under 1e-3.
    upper, lower = np.append(inner, np.inf), np.append(-inner, ck)
    rng = np.random.default_rng(_MVN_SEED)
    p = stats.multivariate_normal.cdf(
        upper, mean=np.zeros(len(upper)), cov=cov, abseps=1e-3 * spend, releps=0, lower_limit=lower, rng=rng
    )
    return 2 * float(p) - spend


@functools.lru_cache(maxsize=256)
def boundaries(fractions: tuple[float, ...], alpha: float) -> tuple[float, ...]:
    """Symmetric two-sided z boundaries c_k at increasing information fractions, overall level
    `alpha`: each side spends alpha / 2 by `spending`, so c_k is chosen such that
    P(|Z_1| < c_1, ..., |Z_{k-1}| < c_{k-1}, |Z_k| >= c_k) = 2 (spending(t_k) - spending(t_{k-1}))
    under the canonical joint distribution corr(Z_i, Z_j) = sqrt(t_i / t_j), i < j.

    This is the convention of the published two-sided tables (ldbounds, gsDesign's symmetric
    test.type=2, Reboussin et al. 2000); applying the same function to the two-sided alpha instead
    would spend about ten times more at t = 0.2 (c_1 = 4.38 rather than 4.88 for five looks).
    """
    t = np.asarray(fractions, dtype=float)
    if len(t) == 0 or np.any(np.diff(t) <= 0) or t[0] <= 0 or t[-1] > 1:
        raise ValueError(f"information fractions must increase within (0, 1]; got {fractions}")
    spent = np.array([2 * spending(x, alpha / 2) for x in t])
    increments = np.diff(spent, prepend=0.0)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    c = [float(stats.norm.isf(increments[0] / 2))]
    for k in range(1, len(t)):
        args = (np.asarray(c), cov[: k + 1, : k + 1], increments[k])
        # Without the earlier looks the exit probability would be 2 (1 - Phi(c)): that fixed-sample
        # boundary is an upper bound, and the earlier looks lower c_k by well under one unit.
        fixed = float(stats.norm.isf(increments[k] / 2))
        lo = fixed - 1.0 if _excess_exit(fixed - 1.0, *args) > 0 else 0.0
        c.append(optimize.brentq(_excess_exit, lo, fixed + 0.1, args=args, xtol=1e-5))
    return tuple(c)


@functools.lru_cache(maxsize=256)
def _levels(first: int, max_seeds: int, alpha: float) -> tuple[float, ...]:
    fractions = tuple(n / max_seeds for n in range(first, max_seeds + 1))
    return tuple(float(2 * stats.norm.sf(c)) for c in boundaries(fractions, alpha))


@dataclass(frozen=True)
class Design:
    """Looks at n = first, first + 1, ..., max_seeds seeds per model, overall two-sided level alpha."""

    first: int
    max_seeds: int
    alpha: float = 0.05

    def __post_init__(self):
        if not isinstance(self.first, int) or self.first < 2:
            raise ConfigError("first", self.first, "an integer >= 2 (Welch's test needs two seeds a side)")
        if not isinstance(self.max_seeds, int) or self.max_seeds < self.first:
            raise ConfigError("max_seeds", self.max_seeds, f"an integer >= the first look's seeds ({self.first})")
        if not 0 < self.alpha < 1:
            raise ConfigError("alpha", self.alpha, "a level strictly between 0 and 1")

    @property
    def looks(self) -> range:
        """Seeds per model at each look."""
        return range(self.first, self.max_seeds + 1)

    def levels(self, alpha: float | None = None) -> tuple[float, ...]:
        """Nominal two-sided p-value level of each look for an overall level `alpha` (default: the
        design's), i.e. 2 (1 - Phi(c_k)). Cached per (first, max_seeds, alpha)."""
        return _levels(self.first, self.max_seeds, float(self.alpha if alpha is None else alpha))


@dataclass(frozen=True)
class ClaimSeries:
    """One claim's per-seed values in seed order: side A, side B. `expected` is -1 when the claim
    holds if mean(a) - mean(b) < 0 (A claimed better on a lower-is-better metric), +1 when it holds
    if the difference is > 0. `margin`, when given, allows declaring equivalence within +-margin."""

    a: Sequence[float]
    b: Sequence[float]
    expected: int
    margin: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "a", tuple(float(x) for x in self.a))
        object.__setattr__(self, "b", tuple(float(x) for x in self.b))
        if self.expected not in (-1, 1):
            raise ValueError(f"expected={self.expected!r}: must be -1 (A's mean lower) or +1 (A's mean higher)")
        if not all(math.isfinite(x) for x in self.a + self.b):
            raise ValueError("claim values must be finite; leave failed seeds out of the series")
        if self.margin is not None and not self.margin > 0:
            raise ValueError(f"margin={self.margin!r}: expected a positive number or None")

    @property
    def seeds(self) -> int:
        """Seeds that both sides have."""
        return min(len(self.a), len(self.b))


@dataclass(frozen=True)
class Decision:
    """A claim's verdict and the look that gave it.

    verdict: "supported", "contradicted", "equivalent" or "undecided".
    seeds: seeds per model at the deciding look; for "undecided" the last look that could be made,
      min(len(a), len(b), max_seeds), or the seeds available when fewer than the first look's.
    p_value: Welch's two-sided p at that look (for "equivalent": the larger p of the two one-sided
      tests, which was compared with level / 2); None with fewer than two seeds a side.
    level: the nominal two-sided level it was compared with; None when no look was made.
    difference: mean(a) - mean(b) over those seeds; None without seeds.
    interval: repeated confidence interval for the difference at that look, difference +-
      t_{df, 1-level/2} * se (Welch's se and df), which keeps its coverage whatever look stopped
      the procedure; None when no look was made.
    """

    verdict: str
    seeds: int
    p_value: float | None
    level: float | None
    difference: float | None
    interval: tuple[float, float] | None


@functools.lru_cache(maxsize=1 << 14)
def welch(a: tuple[float, ...], b: tuple[float, ...]):
    """Welch's t-test (`scipy.stats.ttest_ind(equal_var=False)`) of two tuples of values, cached:
    the compare loop replays every earlier look after each new seed."""
    return stats.ttest_ind(a, b, equal_var=False)


def _decision(verdict: str, s: ClaimSeries, n: int, level: float | None, p: float | None = None) -> Decision:
    a, b = s.a[:n], s.b[:n]
    difference = float(np.mean(a) - np.mean(b)) if n else None
    if n < 2:
        return Decision(verdict, n, None, level, difference, None)
    result = welch(a, b)
    interval = None
    if level is not None:
        ci = result.confidence_interval(confidence_level=1 - level)
        interval = (float(ci.low), float(ci.high))
    return Decision(verdict, n, float(result.pvalue if p is None else p), level, difference, interval)


def _equivalence_p(s: ClaimSeries, n: int) -> float:
    """Larger p of the two one-sided Welch tests: difference > -margin and difference < +margin."""
    a, b = np.asarray(s.a[:n]), np.asarray(s.b[:n])
    above = stats.ttest_ind(a + s.margin, b, equal_var=False, alternative="greater").pvalue
    below = stats.ttest_ind(a - s.margin, b, equal_var=False, alternative="less").pvalue
    return float(max(above, below))


def decide(series: Sequence[ClaimSeries], design: Design) -> list[Decision]:
    """Replay the looks over the claims' values and return one `Decision` per claim, in order.

    At look n every undecided claim with n values a side is tested on its first n values: rejected
    (supported if the difference has the expected sign, contradicted otherwise) when Welch's p <=
    the look's level for alpha / (m - r), r the claims rejected so far; the test is repeated within
    the look until no new rejection. Then an undecided claim with a margin is declared equivalent
    when both one-sided Welch tests against -margin and +margin have p < level / 2 with the level
    for alpha / m. That is the two one-sided tests at half the level an equivalence test needs
    (the repeated (1 - level) interval lies within +-margin), so it is conservative.

    A look reads only the first n values, and more rejections only raise the levels, so seeds added
    later (for other claims) never change a decided claim. Deterministic.
    """
    m = len(series)
    decided: list[Decision | None] = [None] * m
    last_level: list[float | None] = [None] * m
    rejected = 0
    for k, n in enumerate(design.looks):
        active = [i for i, s in enumerate(series) if decided[i] is None and s.seeds >= n]
        if not active:
            continue
        tests = {i: welch(series[i].a[:n], series[i].b[:n]) for i in active}
        while rejected < m:
            level = design.levels(design.alpha / (m - rejected))[k]
            new = []
            for i in active:
                if decided[i] is not None:
                    continue
                last_level[i] = level
                if tests[i].pvalue <= level:  # NaN (two constant, equal sides) never rejects
                    new.append(i)
            for i in new:
                holds = np.sign(tests[i].statistic) == series[i].expected
                decided[i] = _decision("supported" if holds else "contradicted", series[i], n, level)
            rejected += len(new)
            if not new:
                break
        bonferroni = design.levels(design.alpha / m)[k]
        for i in active:
            s = series[i]
            if decided[i] is None and s.margin is not None:
                p = _equivalence_p(s, n)
                if p < bonferroni / 2:
                    decided[i] = _decision("equivalent", s, n, bonferroni, p)
    out = []
    for i, s in enumerate(series):
        if decided[i] is not None:
            out.append(decided[i])
        else:
            n = min(s.seeds, design.max_seeds)
            out.append(_decision("undecided", s, n, last_level[i]))
    return out


def still_open(decisions: Sequence[Decision], series: Sequence[ClaimSeries], design: Design) -> list[int]:
    """Indices of the claims that are undecided and have fewer than max_seeds values on a side:
    the compare loop adds a seed to their models."""
    return [
        i for i, (d, s) in enumerate(zip(decisions, series)) if d.verdict == "undecided" and s.seeds < design.max_seeds
    ]
