"""Report tables as plain strings (header + rows), shared by the Markdown and HTML renderings."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.core.schema import CONDITIONAL_KEYS, GUIDANCE_SWEEP_KEYS, METRIC_BY_KEY, METRICS, QUALITY_KEYS
from bench.report.aggregate import ALPHA, GuidanceSweep, ModelRow, Ranking, Summary
from bench.report.collect import Run, fmt_budget
from bench.report.compute import EqualCompute, ParetoPoint
from bench.report.ranks import AverageRanks

COST_KEYS = tuple(m.key for m in METRICS if m.table == "cost")


@dataclass
class Table:
    """A table of already formatted cells."""

    header: list[str]
    rows: list[list[str]]
    emphasis: tuple[int, ...] = ()  # indices of rows to set apart (e.g. the data floor)


def fmt_number(value: float | None, decimals: int | None = None) -> str:
    """About three significant figures in fixed notation; thousands get separators."""
    if value is None or not math.isfinite(value):
        return "–"
    if decimals is None:
        decimals = _decimals(value)
    return f"{value:,.{decimals}f}"


def _decimals(value: float) -> int:
    if value == 0:
        return 2
    return max(0, 2 - math.floor(math.log10(abs(value))))


def fmt_summary(summary: Summary | None, integer: bool = False, scientific: bool = False) -> str:
    """`mean ± half-width` (95% CI), the mean alone for n=1, '–' when absent; `scientific` for
    counts spanning orders of magnitude (FLOPs): `3.03e+10`."""
    if summary is None or summary.mean is None:
        return "–"
    if scientific:
        text = f"{summary.mean:.3g}"
        return text + (f" ± {summary.half_width:.2g}" if summary.half_width else "")
    decimals = 0 if integer else _decimals(summary.mean)
    text = fmt_number(summary.mean, decimals)
    if summary.half_width is not None:
        text += f" ± {fmt_number(summary.half_width, decimals)}"
    return text


def fmt_ratio(value: float | None, half_width: float | None) -> str:
    """`2.3 ± 0.2×`: a multiple of the data floor with its 95% CI."""
    if value is None:
        return "–"
    decimals = _decimals(value)
    text = fmt_number(value, decimals)
    return (text if half_width is None else f"{text} ± {fmt_number(half_width, decimals)}") + "×"


def quality_table(rows: Sequence[ModelRow], floor: dict[str, Summary]) -> Table:
    header = [
        "model",
        "family",
        "seeds",
        METRIC_BY_KEY["fid"].label,
        "× floor",
        *(METRIC_BY_KEY[k].label for k in QUALITY_KEYS[1:]),
    ]
    body = []
    for row in rows:
        cells = [fmt_summary(row.summaries[k]) for k in QUALITY_KEYS]
        ratio = fmt_ratio(row.fid_vs_floor, row.fid_vs_floor_half_width)
        body.append([row.model, row.family, _seeds(row.seeds), cells[0], ratio, *cells[1:]])
    emphasis: tuple[int, ...] = ()
    if floor:
        n = max(s.n for s in floor.values())
        cells = [fmt_summary(floor.get(k)) for k in QUALITY_KEYS]
        body.append(
            [
                "data floor (real train images)",
                "–",
                f"{n} draw" + ("s" if n != 1 else ""),
                cells[0],
                "1×" if floor["fid"].mean else "–",
                *cells[1:],
            ]
        )
        emphasis = (len(body) - 1,)
    return Table(header, body, emphasis)


def cost_table(rows: Sequence[ModelRow]) -> Table:
    header = [
        "model",
        *(METRIC_BY_KEY[k].label for k in COST_KEYS[:1]),
        "kind",
        *(METRIC_BY_KEY[k].label for k in COST_KEYS[1:]),
    ]
    body = []
    for row in rows:
        cells = [
            fmt_summary(row.summaries[k], METRIC_BY_KEY[k].integer, scientific=METRIC_BY_KEY[k].unit == "FLOPs")
            for k in COST_KEYS
        ]
        if row.bpd_kind == "n/a":
            cells[0] = "n/a"
        body.append([row.model, cells[0], row.bpd_kind, *cells[1:]])
    return Table(header, body)


def conditional_table(rows: Sequence[ModelRow], floor: dict[str, Summary]) -> Table:
    """Accuracy, per-class KID and bits/dim given the label (beside the marginal) of conditional runs,
    with the class-balanced data floor."""
    header = [
        "model",
        "family",
        "seeds",
        *(METRIC_BY_KEY[k].label for k in CONDITIONAL_KEYS),
        "bits/dim (marginal over classes)",
        "kind",
    ]
    body = []
    for row in rows:
        cells = [fmt_summary(row.summaries[k]) for k in CONDITIONAL_KEYS]
        marginal = fmt_summary(row.summaries["bits_per_dim"])
        if row.bpd_kind == "n/a":
            cells[CONDITIONAL_KEYS.index("bits_per_dim_given_label")] = marginal = "n/a"
        body.append([row.model, row.family, _seeds(row.seeds), *cells, marginal, row.bpd_kind])
    emphasis: tuple[int, ...] = ()
    if floor and any(floor.get(k) and floor[k].mean is not None for k in CONDITIONAL_KEYS):
        n = max(floor[k].n for k in CONDITIONAL_KEYS if floor.get(k))
        cells = [fmt_summary(floor.get(k)) for k in CONDITIONAL_KEYS]
        body.append(
            [
                "data floor (real train images, even by class)",
                "–",
                f"{n} draw" + ("s" if n != 1 else ""),
                *cells,
                "–",
                "–",
            ]
        )
        emphasis = (len(body) - 1,)
    return Table(header, body, emphasis)


def guidance_table(sweeps: Sequence[tuple[ModelRow, GuidanceSweep]]) -> Table:
    """Per model and guidance weight w: accuracy, FID and recall (mean ± 95% CI over seeds), or why
    the sweep does not apply to the model."""
    header = ["model", "guidance w", *(METRIC_BY_KEY[k].label for k in GUIDANCE_SWEEP_KEYS), "n"]
    body = []
    for row, sweep in sweeps:
        if sweep.not_applied is not None:
            blanks = ["–"] * (len(GUIDANCE_SWEEP_KEYS) + 1)
            body.append([row.model, f"does not apply: {sweep.not_applied}", *blanks])
            continue
        for w, summaries in sweep.points.items():
            n = max(s.n for s in summaries.values())
            body.append(
                [
                    row.model,
                    fmt_number(w, 2 if w != int(w) else 0),
                    *(fmt_summary(summaries[k]) for k in GUIDANCE_SWEEP_KEYS),
                    str(n),
                ]
            )
    return Table(header, body)


def ranking_table(ranking: Ranking) -> Table:
    key = ranking.metric.key
    header = ["rank", "model", f"{ranking.metric.label} (mean ± 95% CI)", "n", "vs next (Welch's t, Holm)"]
    body = []
    for i, row in enumerate(ranking.rows):
        label = row.model + (f" ({row.bpd_kind})" if key == "bits_per_dim" else "")
        versus = ranking.next_comparisons[i].verdict if i < len(ranking.next_comparisons) else "–"
        body.append([str(i + 1), label, fmt_summary(row.summaries[key]), str(row.summaries[key].n), versus])
    return Table(header, body)


def pairwise_table(ranking: Ranking) -> Table:
    """Holm-corrected Welch p-values between every pair of ranked models (upper triangle)."""
    names = [row.model for row in ranking.rows]
    body = []
    for i, a in enumerate(names):
        cells = []
        for j, b in enumerate(names):
            comparison = ranking.pairwise.get((a, b)) if j > i else None
            if comparison is None:
                cells.append("")
            elif comparison.p_value is None:
                cells.append("n/t")
            else:
                cells.append(f"{comparison.p_holm:.3g}" + ("*" if comparison.significant else ""))
        body.append([a, *cells])
    return Table(["Holm p", *names], body)


def failed_table(runs: Sequence[Run], root: Path) -> Table:
    header = ["run", "model", "dataset", "seed", "status", "message"]
    body = [
        [
            _relative(run.folder, root),
            run.model,
            str(run.record.get("dataset")),
            str(run.seed),
            run.status,
            str(run.record.get("message") or ""),
        ]
        for run in runs
    ]
    return Table(header, body)


def mapping_table(items: Sequence[tuple[str, Any]], header: tuple[str, str] = ("key", "value")) -> Table:
    return Table(list(header), [[k, str(v)] for k, v in items])


def _seeds(seeds: Sequence[Any]) -> str:
    return f"{len(seeds)} ({', '.join(map(str, seeds))})"


def _relative(folder: Path, root: Path) -> str:
    try:
        return str(folder.relative_to(root)) or "."
    except ValueError:
        return str(folder)


def selection_table(rows: Sequence[ModelRow]) -> tuple[Table, list[str]]:
    """Per model: which checkpoint each table's numbers come from and how far into training it was,
    what stopped training, and the tuning budget behind the config; plus one warning line per model
    that had more tuning trials than another model of the group (an unequal tuning budget)."""
    header = ["model", "sample metrics from", "images seen then", "bits/dim from", "images seen then"]
    header += ["stopped by", "tuning"]
    trials = {row.model: _tuning_trials(row) for row in rows}
    trainable = {model: n for model, n in trials.items() if n is not None}
    fewest = min(trainable.values(), default=0)
    body, warnings = [], []
    for row in rows:
        records = [run.record for run in row.runs]
        likelihood = [r.get("checkpoint", {}).get("likelihood") or {} for r in records]
        body.append(
            [
                row.model,
                _distinct(_rule(r) for r in records),
                _images_then([(r.get("checkpoint") or {}).get("selected_at") for r in records], records),
                _distinct(entry.get("selection") for entry in likelihood) if any(likelihood) else "–",
                _images_then([entry.get("selected_at") for entry in likelihood], records) if any(likelihood) else "–",
                _distinct((r.get("budget") or {}).get("stopped_by") for r in records),
                _tuning(row),
            ]
        )
        n = trainable.get(row.model)
        if n is not None and n > fewest:
            warnings.append(
                f"{row.model} had {n} tuning trial(s), more than the {fewest} of another model in this group: "
                "its lead may be its tuning budget"
            )
    return Table(header, body), warnings


def _rule(record: dict) -> str | None:
    if (record.get("budget") or {}).get("stopped_by") == "closed_form":
        return "closed form (one fit)"
    return (record.get("checkpoint") or {}).get("selection")


def _images_then(points: Sequence[dict | None], records: Sequence[dict]) -> str:
    """Mean images seen at the selected checkpoint, of the mean seen in all ("31,000 of 50,000")."""
    at = [p.get("samples_seen") for p in points if isinstance(p, dict) and p.get("samples_seen") is not None]
    seen = [(r.get("training") or {}).get("samples_seen") for r in records]
    seen = [s for s in seen if isinstance(s, (int, float))]
    if not at or not seen:
        return "–"
    return f"{sum(at) / len(at):,.0f} of {sum(seen) / len(seen):,.0f}"


def _distinct(values) -> str:
    counts: dict[str, int] = {}
    for value in values:
        if value is not None:
            counts[str(value)] = counts.get(str(value), 0) + 1
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{value} ({n})" for value, n in counts.items()) or "–"


def _tuning_trials(row: ModelRow) -> int | None:
    """Tuning trials behind the row's config (0: untuned); None for a model fitted in closed form."""
    record = row.runs[0].record
    if (record.get("budget") or {}).get("stopped_by") == "closed_form":
        return None
    tuning = ((record.get("config") or {}).get("model") or {}).get("tuning") or {}
    trials = tuning.get("trials")
    return int(trials) if isinstance(trials, int) and not isinstance(trials, bool) else 0


def _tuning(row: ModelRow) -> str:
    trials = _tuning_trials(row)
    if trials is None:
        return "nothing to tune"
    if trials == 0:
        return "untuned (shipped config)"
    tuning = row.runs[0].record["config"]["model"]["tuning"]
    budget = tuning.get("budget") or {}
    value = budget.get("value")
    return f"{trials} trials × {fmt_budget(value, budget.get('kind'))} by {tuning.get('statistic')}"


def uncertainty_table(rows: Sequence[ModelRow], floor: dict[str, Summary]) -> Table:
    """FID's two sources of uncertainty per model: seed-to-seed (training, with each seed's own
    scored draw, against the one reference set) and the metric's own sampling within one run (a
    jackknife over the generated and the reference images, protocol v6); and the data floor's
    interval, which covers a new draw of both."""
    header = ["model", "seeds", "FID mean", "seed-to-seed sd", "within-run sampling sd (both sides)"]
    header += ["95% CI over seeds"]
    body = []
    for row in rows:
        fid = row.summaries["fid"]
        sampling = row.summaries.get("fid_sampling_std")
        within = _root_mean_square(sampling.values) if sampling is not None else None
        half = f"± {fmt_number(fid.half_width)}" if fid.half_width is not None else "–"
        body.append([row.model, str(fid.n), fmt_number(fid.mean), fmt_number(fid.std), fmt_number(within), half])
    emphasis: tuple[int, ...] = ()
    if floor.get("fid") and floor["fid"].mean is not None:
        fid = floor["fid"]
        within = _root_mean_square(floor["fid_sampling_std"].values) if floor.get("fid_sampling_std") else None
        half = f"± {fmt_number(fid.half_width)}" if fid.half_width is not None else "–"
        label = "± 1.96 × sampling sd (new draw and reference)" if within is not None else "t over draws"
        body.append(["data floor (real train images)", f"{fid.n} draws", fmt_number(fid.mean), "–"])
        body[-1] += [fmt_number(within), f"{half} ({label})"]
        emphasis = (len(body) - 1,)
    return Table(header, body, emphasis)


def _root_mean_square(values: Sequence[float]) -> float | None:
    return math.sqrt(sum(v * v for v in values) / len(values)) if values else None


def average_rank_table(ranks: AverageRanks) -> tuple[Table, str]:
    """Treatments by average rank over the blocks (datasets), and one sentence on the tests."""
    order = np.argsort(ranks.average)
    header = ["family or model", "average rank", *ranks.blocks]
    body = [[ranks.treatments[i], f"{ranks.average[i]:.2f}", *(f"{r:g}" for r in ranks.ranks[:, i])] for i in order]
    p = "–" if ranks.p_value is None else f"{ranks.p_value:.3g}"
    separated = ranks.separated()
    pairs = "; ".join(f"{a} ahead of {b}" for a, b in separated) or "no pair"
    text = (
        f"Friedman test over {len(ranks.blocks)} groups and {len(ranks.treatments)} treatments: "
        f"chi² = {fmt_number(ranks.statistic)}, p = {p}. Nemenyi critical difference at {ALPHA}: "
        f"{ranks.critical_difference:.2f} ranks; separated by more than it: {pairs}."
    )
    return Table(header, body), text


def equal_compute_table(equal: EqualCompute) -> Table:
    """FID per model at each training-FLOP level, read off the quality curves (mean ± 95% CI over
    seeds); the header says it is interpolated."""
    header = ["model", *(f"FID at {level:.3g} training FLOPs (interpolated)" for level in equal.levels)]
    body = [[model, *(fmt_summary(s) for s in summaries)] for model, summaries in sorted(equal.fid.items())]
    body += [[model, *("closed form: no curve" for _ in equal.levels)] for model in equal.without_curve]
    return Table(header, body)


def pareto_table(points: Sequence[ParetoPoint]) -> Table:
    """Sampling FLOPs per image, FID and place on the Pareto front, cheapest first."""
    header = ["model", "sampling FLOPs per image", METRIC_BY_KEY["fid"].label, "Pareto front"]
    body = []
    for p in points:
        place = "on the front" if p.on_front else "dominated by " + ", ".join(p.dominated_by)
        if not p.trained:
            place = "closed-form baseline (not ranked)"
        body.append([p.model, f"{p.sample_flops:.3g}", fmt_summary(p.fid), place])
    return Table(header, body)
