"""Average ranks across datasets: the Friedman test and the Nemenyi critical difference (Demšar 2006).

Used when a report spans several datasets: each group is a block, each family (or model, where a
group holds two models of one family) a treatment ranked by its mean over seeds. The Friedman test
is `scipy.stats.friedmanchisquare`; the critical difference is q_alpha * sqrt(k(k+1) / 6N), q_alpha
the studentized range quantile over sqrt(2) (`scipy.stats.studentized_range`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from bench.core.schema import METRIC_BY_KEY
from bench.report.aggregate import ModelRow

ALPHA = 0.05


@dataclass(frozen=True)
class AverageRanks:
    """Treatments ordered by average rank (1 = best) over `blocks`, with the tests across them."""

    metric: str
    treatments: tuple[str, ...]
    blocks: tuple[str, ...]
    ranks: np.ndarray  # [blocks, treatments]
    statistic: float | None
    p_value: float | None
    critical_difference: float

    @property
    def average(self) -> np.ndarray:
        return self.ranks.mean(axis=0)

    def separated(self) -> list[tuple[str, str]]:
        """Pairs whose average ranks differ by more than the critical difference (better first)."""
        order = np.argsort(self.average)
        names = [self.treatments[i] for i in order]
        values = self.average[order]
        return [
            (names[i], names[j])
            for i in range(len(names))
            for j in range(i + 1, len(names))
            if values[j] - values[i] > self.critical_difference
        ]


def critical_difference(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi's critical difference for `k` treatments ranked over `n` blocks."""
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n)))


def _treatments(rows: Sequence[ModelRow]) -> dict[str, ModelRow]:
    families = [row.family for row in rows]
    return {(row.family if families.count(row.family) == 1 else row.model): row for row in rows}


def average_ranks(blocks: Mapping[str, Sequence[ModelRow]], metric: str = "fid") -> AverageRanks | None:
    """Average ranks of the treatments present in every block; None with fewer than 2 blocks or
    3 treatments (the Friedman test's minimum)."""
    by_block = {name: _treatments(rows) for name, rows in blocks.items()}
    by_block = {
        name: {t: row.summaries[metric].mean for t, row in rows.items() if row.summaries[metric].mean is not None}
        for name, rows in by_block.items()
    }
    common = sorted(set.intersection(*(set(v) for v in by_block.values()))) if by_block else []
    if len(by_block) < 2 or len(common) < 3:
        return None
    sign = 1.0 if METRIC_BY_KEY[metric].better == "lower" else -1.0
    values = np.array([[sign * block[t] for t in common] for block in by_block.values()])
    ranks = np.vstack([stats.rankdata(row) for row in values])
    result = stats.friedmanchisquare(*values.T)
    p = float(result.pvalue) if math.isfinite(result.pvalue) else None
    statistic = float(result.statistic) if math.isfinite(result.statistic) else None
    return AverageRanks(
        metric=metric,
        treatments=tuple(common),
        blocks=tuple(by_block),
        ranks=ranks,
        statistic=statistic,
        p_value=p,
        critical_difference=critical_difference(len(common), len(by_block)),
    )
