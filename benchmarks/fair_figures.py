"""Per family in a comparison folder: the figures the fair-comparison change is judged by.

    python benchmarks/fair_figures.py results/compare [--out figures.json]

For each model: best and final validation bits/dim (from `curves.validation`, or `metrics.csv` for
records before protocol v5), the images seen at each table's selected checkpoint, the validation
statistic there, test FID and bits/dim (mean ± 95% CI over seeds), and the tuning trials behind
the config; then the FID ranking with its Welch verdicts between neighbours. Reads records only.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

from bench.core.records import read_record, record_files
from bench.report.aggregate import model_rows, rank
from bench.report.collect import Run


def val_bpd(folder: Path, record: dict) -> list[float]:
    rows = (record.get("curves") or {}).get("validation")
    if rows:
        return [r["val/bpd"] for r in rows if r.get("val/bpd") is not None]
    path = folder / "metrics.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return [float(r["val/bpd"]) for r in csv.DictReader(fh) if r.get("val/bpd")]


def summary(values: list[float]) -> str:
    if not values:
        return "–"
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.3f}"
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return f"{mean:.3f} ± {half:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    runs = [Run(p.parent, r) for p in record_files(args.folder) if (r := read_record(p)) and r["status"] == "completed"]
    figures = {}
    for row in model_rows(runs):
        per_seed = []
        for run in sorted(row.runs, key=lambda r: r.seed):
            rec, curve = run.record, val_bpd(run.folder, run.record)
            ck = rec.get("checkpoint") or {}
            lik = ck.get("likelihood") or (ck if "bpd" in str(ck.get("selection")) else {})
            per_seed.append(
                {
                    "seed": run.seed,
                    "best_val_bpd": min(curve) if curve else None,
                    "final_val_bpd": curve[-1] if curve else None,
                    "final_over_best": curve[-1] / min(curve) - 1 if curve else None,
                    "samples_seen": (rec.get("training") or {}).get("samples_seen"),
                    "quality_selection": ck.get("selection"),
                    "quality_selected_samples": (ck.get("selected_at") or {}).get("samples_seen"),
                    "quality_selected_value": (ck.get("selected_at") or {}).get("value"),
                    "likelihood_selected_samples": (lik.get("selected_at") or {}).get("samples_seen"),
                    "stopped_by": (rec.get("budget") or {}).get("stopped_by"),
                    "test_fid": rec["metrics"].get("fid"),
                    "test_bpd": rec["metrics"].get("bits_per_dim"),
                }
            )
        tuning = ((row.runs[0].record.get("config") or {}).get("model") or {}).get("tuning") or {}
        figures[row.model] = {
            "seeds": per_seed,
            "tuning_trials": tuning.get("trials"),
            "tuning_budget": tuning.get("budget"),
        }
        fid = [s["test_fid"] for s in per_seed if s["test_fid"] is not None]
        bpd = [s["test_bpd"] for s in per_seed if s["test_bpd"] is not None]
        gaps = [f"{s['final_over_best']:+.1%}" for s in per_seed if s["final_over_best"] is not None]
        print(
            f"{row.model:28s} test FID {summary(fid):>16s}  bpd {summary(bpd):>14s}  "
            f"val bpd best→final {[round(s['best_val_bpd'], 3) for s in per_seed if s['best_val_bpd']]} → "
            f"{[round(s['final_val_bpd'], 3) for s in per_seed if s['final_val_bpd']]} ({', '.join(gaps)})  "
            f"selected at {[s['quality_selected_samples'] for s in per_seed]} of {per_seed[0]['samples_seen']}  "
            f"tuning {tuning.get('trials', 0)} trials"
        )
    ranking = rank(model_rows(runs), "fid")
    verdicts = [
        f"{c.a} vs {c.b}: p = {c.p_value:.3g}" if c.p_value is not None else f"{c.a} vs {c.b}: n/t"
        for c in ranking.next_comparisons
    ]
    print("FID ranking:", " < ".join(r.model for r in ranking.rows))
    print("Welch (neighbours):", "; ".join(verdicts))
    figures["_fid_ranking"] = {"order": [r.model for r in ranking.rows], "welch_neighbours": verdicts}
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
