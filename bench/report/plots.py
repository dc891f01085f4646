"""Report figures as PNG bytes: quality over training time and training FLOPs, quality against
sampling speed, FID against sampling FLOPs per image with its Pareto front, and (conditional runs
with a guidance sweep) accuracy against FID under classifier-free guidance."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from bench.core.schema import label  # noqa: E402
from bench.report.aggregate import CONFIDENCE, GuidanceSweep, ModelRow, Summary  # noqa: E402
from bench.report.compute import ParetoPoint, flops_curve  # noqa: E402

GRID_POINTS = 50


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _curve(run_record: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """(train_seconds, fid) of one run's quality curve, sorted by time; None when empty."""
    points = (run_record.get("curves") or {}).get("quality") or []
    pairs = [(p.get("train_seconds"), p.get("fid")) for p in points if isinstance(p, dict)]
    pairs = [
        (float(t), float(f))
        for t, f in pairs
        if isinstance(t, (int, float)) and isinstance(f, (int, float)) and np.isfinite(f)
    ]
    if not pairs:
        return None
    pairs.sort()
    t, f = np.array(pairs).T
    return t, f


def mean_band(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Seeds' curves interpolated onto a shared time grid: (grid, mean, 95% CI half-width or None).

    The grid spans the times every seed covers, so the band never extrapolates a seed.
    """
    if len(curves) == 1:
        t, f = curves[0]
        return t, f, None
    start = max(t[0] for t, _ in curves)
    stop = min(t[-1] for t, _ in curves)
    if stop <= start:  # seeds' curves do not overlap in time
        start, stop = min(t[0] for t, _ in curves), max(t[-1] for t, _ in curves)
    grid = np.linspace(start, stop, GRID_POINTS)
    stacked = np.stack([np.interp(grid, t, f) for t, f in curves])
    n = len(curves)
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * stacked.std(axis=0, ddof=1) / np.sqrt(n)
    return grid, stacked.mean(axis=0), half


def quality_vs_time(rows: Sequence[ModelRow]) -> bytes | None:
    """FID against training seconds per model: mean over seeds with a 95% band.

    The curve's cheap FID uses fewer samples and the validation split, so it has its own scale:
    no data-floor line (that one is measured against the test split at the headline N)."""
    return _quality_curves(rows, _curve, "training seconds", "Quality over training time")


def quality_vs_flops(rows: Sequence[ModelRow]) -> bytes | None:
    """FID against training FLOPs (log) per model, as `quality_vs_time`: equal compute, any machine."""
    return _quality_curves(rows, flops_curve, "training FLOPs (log)", "Quality over training compute", log_x=True)


def _quality_curves(rows: Sequence[ModelRow], curve_of, xlabel: str, title: str, log_x: bool = False) -> bytes | None:
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    drawn = False
    for row in rows:
        curves = [c for c in (curve_of(r.record) for r in row.runs) if c is not None]
        if not curves:
            continue
        if log_x:  # seeds are averaged on a grid even in log space, so the band does not bunch up
            curves = [(np.log10(x), y) for x, y in curves]
        grid, mean, half = mean_band(curves)
        grid = 10**grid if log_x else grid
        (line,) = ax.plot(grid, mean, marker="." if len(grid) < 20 else None, label=f"{row.model} (n={len(curves)})")
        if half is not None:
            ax.fill_between(grid, mean - half, mean + half, color=line.get_color(), alpha=0.2, linewidth=0)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{label('fid')}, validation")
    ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log")
    ax.set_title(f"{title} (mean, 95% band over seeds)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def pareto_front(points: Sequence[ParetoPoint], floor_fid: float | None = None) -> bytes | None:
    """Mean FID (95% CI bars) against sampling FLOPs per image (log), the trained models' Pareto
    front drawn as a step line; closed-form baselines as open markers, off the front."""
    shown = [p for p in points if p.sample_flops > 0]  # a log axis has no place for a free sampler
    if not shown:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for p in shown:
        style = {"fmt": "o"} if p.trained else {"fmt": "o", "mfc": "none"}
        ax.errorbar(p.sample_flops, p.fid.mean, yerr=_err(p.fid), capsize=3, **style)
        ax.annotate(p.model, (p.sample_flops, p.fid.mean), textcoords="offset points", xytext=(5, 5), fontsize=8)
    front = [p for p in shown if p.on_front]
    if len(front) > 1:
        ax.step([p.sample_flops for p in front], [p.fid.mean for p in front], where="post", color="k", alpha=0.5)
    if floor_fid is not None and floor_fid > 0:
        ax.axhline(floor_fid, color="gray", linestyle="--", linewidth=1, label="data floor")
    ax.set_xscale("log")
    if all(p.fid.mean > 0 for p in shown):
        ax.set_yscale("log")
    ax.set_xlabel("sampling FLOPs per image (log)")
    ax.set_ylabel(label("fid"))
    ax.set_title("Quality vs sampling compute: Pareto front (mean, 95% CI)")
    ax.grid(alpha=0.3)
    return _png(fig)


def quality_vs_speed(rows: Sequence[ModelRow], floor_fid: float | None = None) -> bytes | None:
    """Final FID against sampling images per second, one point per model with 95% CI bars."""
    points = [(row, row.summaries["sample_images_per_s"], row.summaries["fid"]) for row in rows]
    points = [(row, s, f) for row, s, f in points if s.mean and s.mean > 0 and f.mean is not None]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for row, speed, fid in points:
        ax.errorbar(speed.mean, fid.mean, xerr=_err(speed), yerr=_err(fid), fmt="o", capsize=3, label=row.model)
        ax.annotate(row.model, (speed.mean, fid.mean), textcoords="offset points", xytext=(5, 5), fontsize=8)
    if floor_fid is not None and floor_fid > 0:
        ax.axhline(floor_fid, color="gray", linestyle="--", linewidth=1, label="data floor")
    ax.set_xscale("log")
    if all(fid.mean > 0 for _, _, fid in points):
        ax.set_yscale("log")  # FIDs of weak and strong models differ by orders of magnitude
    ax.set_xlabel("sampling images per second (log)")
    ax.set_ylabel(label("fid"))
    ax.set_title("Quality vs sampling speed (mean, 95% CI)")
    ax.grid(alpha=0.3)
    return _png(fig)


def _err(summary: Summary) -> float | None:
    return summary.half_width if summary.half_width is not None else None


def guidance_tradeoff(sweeps: Sequence[tuple[ModelRow, GuidanceSweep]]) -> bytes | None:
    """Accuracy of conditional samples against FID, one line per model through its guidance
    weights w (each point labelled with its w; mean over seeds with 95% CI bars)."""
    drawn = [(row, sweep) for row, sweep in sweeps if sweep.points]
    if not drawn:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for row, sweep in drawn:
        points = [
            (w, p["fid"], p["accuracy"])
            for w, p in sweep.points.items()
            if p["fid"].mean is not None and p["accuracy"].mean is not None
        ]
        if not points:
            continue
        xs, ys = [f.mean for _, f, _ in points], [a.mean for _, _, a in points]
        (line,) = ax.plot(xs, ys, marker="o", label=row.model)
        for w, fid, acc in points:
            ax.errorbar(
                fid.mean,
                acc.mean,
                xerr=_err(fid),
                yerr=_err(acc),
                fmt="none",
                ecolor=line.get_color(),
                capsize=2,
                linewidth=1,
            )
            ax.annotate(f"w={w:g}", (fid.mean, acc.mean), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(label("fid"))
    ax.set_ylabel(label("accuracy"))
    ax.set_title("Classifier-free guidance: accuracy vs FID (mean, 95% CI)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)
