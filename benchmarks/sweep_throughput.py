"""Throughput and overhead of the comparison sweep.

(a) The same work (samples-seen budgets, so every job trains on the same number of images) run
    two ways: Hydra's joblib launcher with 2 jobs x 1 thread, and the basic launcher (one job
    at a time) with 2 threads. Ratio = sequential wall time / parallel wall time (target >= 1.6).
(b) The whole comparison (`bench-compare`: sweep + evaluation + report) at a wall-clock budget:
    wall time / (sum of the jobs' training budgets / parallel jobs) (target <= 1.25). Baselines
    fitted in closed form have no training budget and add only overhead.

Prints both ratios and writes them to benchmarks/results/sweep_throughput.json. Every run uses a
fresh results folder, so nothing is skipped. Timings are wall-clock on this machine: run it
when nothing else is running.

    python benchmarks/sweep_throughput.py [--samples 8000] [--seconds 30] [--models a,b,...] [--parts a,b]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRAIN_CODE = "import sys; sys.argv[0] = 'bench-train'; from bench.pipeline.train_task import main; main()"
FAMILIES = "cnn_decoder,gan,rnn,gpt"
EVERYTHING = "cnn_decoder,gan,rnn,gpt,independent_pixels,copier"


def _timed(command: list[str]) -> tuple[float, str]:
    """Wall seconds of `command` (run from the repository root) and its output."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    output = done.stdout + done.stderr
    if done.returncode not in (0, 1):  # 1: bench-compare saw a job fail (reported below)
        sys.exit(f"benchmark command failed ({done.returncode}): {' '.join(command)}\n{output[-3000:]}")
    return seconds, output


def _records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.rglob("result.json"))]


def throughput(models: str, samples: int, root: Path) -> dict:
    """(a): parallel 2 x 1 thread vs sequential 1 x 2 threads on equal samples-seen work."""
    common = [
        "experiment=compare",
        f"model={models}",
        "seed=0",
        "budget=samples",
        f"budget.value={samples}",
        "logger=none",
        "progress=none",
    ]
    runs = {}
    for mode, extra in (
        ("parallel_2x1", ["threads=1", "hydra.launcher.n_jobs=2", "concurrent_jobs=2"]),
        ("sequential_1x2", ["threads=2", "hydra/launcher=basic", "concurrent_jobs=1"]),
    ):
        folder = root / mode
        seconds, _ = _timed([sys.executable, "-c", TRAIN_CODE, "-m", *common, *extra, f"results_dir={folder}"])
        records = _records(folder)
        runs[mode] = {
            "wall_seconds": seconds,
            "jobs": len(records),
            "completed": sum(r["status"] == "completed" for r in records),
            "samples_seen": sum((r.get("training") or {}).get("samples_seen") or 0 for r in records),
            "train_seconds": sum((r.get("training") or {}).get("train_seconds") or 0 for r in records),
        }
        print(f"(a) {mode}: {seconds:.1f} s wall, {runs[mode]['completed']}/{runs[mode]['jobs']} completed", flush=True)
    ratio = runs["sequential_1x2"]["wall_seconds"] / runs["parallel_2x1"]["wall_seconds"]
    return {"models": models, "samples_per_job": samples, "runs": runs, "ratio": ratio, "target": ">= 1.6"}


def overhead(models: str, seconds_budget: float, root: Path) -> dict:
    """(b): bench-compare's wall time against its training budgets shared by 2 parallel jobs."""
    folder = root / "compare"
    wall, output = _timed(
        [
            sys.executable,
            "-m",
            "bench.cli.compare",
            f"model={models}",
            "seed=0",
            f"budget.value={seconds_budget}",
            "logger=none",
            "progress=none",
            f"results_dir={folder}",
        ]
    )
    records = _records(folder)
    budgeted = [r for r in records if (r.get("budget") or {}).get("stopped_by") != "closed_form"]
    ideal = sum(float(r["budget"]["value"]) for r in budgeted) / 2
    print(f"(b) bench-compare: {wall:.1f} s wall vs ideal {ideal:.1f} s", flush=True)
    return {
        "models": models,
        "budget_seconds": seconds_budget,
        "jobs": len(records),
        "completed": sum(r["status"] == "completed" for r in records),
        "budgeted_jobs": len(budgeted),
        "wall_seconds": wall,
        "ideal_seconds": ideal,
        "ratio": wall / ideal if ideal else None,
        "train_seconds": {r["run_id"]: (r.get("training") or {}).get("train_seconds") for r in records},
        "target": "<= 1.25",
        "report_written": (folder / "compare" / "report.html").exists(),
        "compare_summary": [
            line for line in output.splitlines() if line.startswith(("not completed:", "bench-compare:", "report:"))
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8000, help="(a) training images per job")
    parser.add_argument("--seconds", type=float, default=30.0, help="(b) training seconds per job")
    parser.add_argument("--models", default=FAMILIES, help="(a) models, comma-separated")
    parser.add_argument("--compare-models", default=EVERYTHING, help="(b) models, comma-separated")
    parser.add_argument("--parts", default="a,b", help="which measurements to run: a, b or a,b")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "sweep_throughput.json")
    args = parser.parse_args()
    result = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        if "a" in args.parts:
            result["throughput"] = throughput(args.models, args.samples, Path(tmp))
        if "b" in args.parts:
            result["overhead"] = overhead(args.compare_models, args.seconds, Path(tmp))
    result["load_average_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    if "throughput" in result:
        print(
            f"(a) throughput, 2 jobs x 1 thread vs sequential x 2 threads: {result['throughput']['ratio']:.2f}x "
            f"(target >= 1.6)"
        )
    if "overhead" in result:
        ratio = result["overhead"]["ratio"]
        print(
            f"(b) compare sweep wall / (training budgets / 2 jobs): "
            f"{'n/a' if ratio is None else f'{ratio:.2f}x'} (target <= 1.25)"
        )
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
