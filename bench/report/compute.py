"""Quality against compute: each run's quality curve on a training-FLOP axis, FID at equal training
FLOPs, and the Pareto front of FID against sampling FLOPs per image.

The families differ most on these axes (a GAN samples an image in one pass, a pixel GPT in C·H·W
passes). A curve point records its training FLOPs; for records from before it did, they are its
images seen × the record's FLOPs per training image, the same FLOP model.

FID at equal training FLOPs is read off each run's quality curve (the cheap FID of a few hundred
samples against the validation split, `protocol.quality_curve`), linearly in log FLOPs between the
two measurements around the level, never beyond a run's first or last measurement: an interpolation,
on the curve's own scale, not the protocol's FID of the headline tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.report.aggregate import ModelRow, Summary, summarize
from bench.report.collect import value_at

#: How many training-FLOP levels the equal-compute table reads, spaced evenly in log FLOPs over
#: the range every trained run's curve covers.
LEVELS = 3


def flops_per_train_image(record: dict) -> float | None:
    """The count made before training, else (older records) the one made at evaluation."""
    for path in (("training", "flops_per_train_image"), ("timing", "flops_per_train_sample")):
        value = value_at(record, path)
        if _positive(value):
            return float(value)
    return None


def flops_curve(record: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """(training FLOPs, FID) of the run's quality curve, sorted by FLOPs; None without a curve
    or a FLOP count."""
    points = [p for p in (value_at(record, ("curves", "quality")) or []) if isinstance(p, dict)]
    per_image = flops_per_train_image(record)
    pairs = []
    for point in points:
        flops, fid = point.get("train_flops"), point.get("fid")
        if not _positive(flops) and per_image is not None and _positive(point.get("samples_seen")):
            flops = point["samples_seen"] * per_image
        if _positive(flops) and isinstance(fid, (int, float)) and math.isfinite(fid):
            pairs.append((float(flops), float(fid)))
    if not pairs:
        return None
    pairs.sort()
    x, y = np.array(pairs).T
    return x, y


def fid_at(curve: tuple[np.ndarray, np.ndarray], flops: float) -> float | None:
    """The curve's FID at `flops`, linear in log FLOPs between its neighbours; None outside it."""
    x, y = curve
    if not x[0] <= flops <= x[-1]:
        return None
    return float(np.interp(math.log(flops), np.log(x), y))


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@dataclass(frozen=True)
class EqualCompute:
    """FID (from the quality curves) per model at training-FLOP levels every trained run reaches."""

    levels: tuple[float, ...]
    fid: dict[str, tuple[Summary, ...]]  # model -> one summary over seeds per level
    without_curve: tuple[str, ...]  # models with no curve on a FLOP axis (closed-form baselines)


def equal_compute(rows: Sequence[ModelRow], n_levels: int = LEVELS) -> EqualCompute | None:
    """FID at `n_levels` training-FLOP levels, log-spaced from the largest first measurement to the
    smallest last one over all trained runs, so no run is ever extrapolated; None when the runs'
    curves share no range."""
    curves = {row.model: [c for c in (flops_curve(r.record) for r in row.runs) if c is not None] for row in rows}
    drawn = [c for cs in curves.values() for c in cs]
    if not drawn:
        return None
    start, stop = max(c[0][0] for c in drawn), min(c[0][-1] for c in drawn)
    if stop < start:
        return None
    levels = tuple(np.geomspace(start, stop, n_levels)) if stop > start else (stop,)
    fid = {
        model: tuple(summarize(fid_at(c, level) for c in model_curves) for level in levels)
        for model, model_curves in curves.items()
        if model_curves
    }
    return EqualCompute(levels, fid, tuple(model for model, cs in curves.items() if not cs))


@dataclass(frozen=True)
class ParetoPoint:
    model: str
    sample_flops: float  # FLOPs per generated image (mean over seeds; the same count in each)
    fid: Summary
    trained: bool  # False: fitted in closed form (a baseline), shown but never on the front
    dominated_by: tuple[str, ...] = ()  # trained models at most as costly and as bad, better in one

    @property
    def on_front(self) -> bool:
        return self.trained and not self.dominated_by


def pareto(rows: Sequence[ModelRow]) -> list[ParetoPoint]:
    """Each model's mean FID against its sampling FLOPs per image, cheapest first, with the front of
    the trained models marked: a model is on it unless another samples with no more FLOPs at no
    worse mean FID, better in one. Closed-form baselines (a copier replays training images at no
    cost) are reference points, not choices, so they neither sit on the front nor push models off it."""
    points = [
        ParetoPoint(row.model, row.summaries["flops_per_sample"].mean, row.summaries["fid"], _trained(row))
        for row in rows
        if row.summaries["flops_per_sample"].mean is not None and row.summaries["fid"].mean is not None
    ]
    return [
        ParetoPoint(p.model, p.sample_flops, p.fid, p.trained, _dominating(p, points) if p.trained else ())
        for p in sorted(points, key=lambda p: (p.sample_flops, p.fid.mean))
    ]


def _trained(row: ModelRow) -> bool:
    return any(value_at(run.record, ("budget", "stopped_by")) != "closed_form" for run in row.runs)


def _dominating(point: ParetoPoint, points: Sequence[ParetoPoint]) -> tuple[str, ...]:
    return tuple(
        other.model
        for other in points
        if other.trained
        and other.model != point.model
        and other.sample_flops <= point.sample_flops
        and other.fid.mean <= point.fid.mean
        and (other.sample_flops < point.sample_flops or other.fid.mean < point.fid.mean)
    )
