"""Reliability of resume: `kill -9` a training run, run it again, and check its `metrics.csv`.

A reference run trains uninterrupted. Each trial starts the same config in a fresh folder, kills
it with SIGKILL a random 0-4 s after its first `last.ckpt` appears (or before any checkpoint, with
--before), runs it again to completion, and counts as whole when the resumed `metrics.csv` logs
exactly the reference's steps, each once, and the run has one completed record with the
reference's samples seen. Prints "whole: k of n" and writes benchmarks/results/kill_resume_trials.json.

    python benchmarks/kill_resume_trials.py [--trials 5] [--samples 60000] [--before]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _command(results: Path, samples: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.pipeline.train_task",
        f"results_dir={results}",
        "dataset=procedural",
        "model=cnn_decoder",
        "budget=samples",
        f"budget.value={samples}",
        "threads=1",
        "progress=none",
        "trainer.log_every_n_steps=5",
        "protocol.quality_curve.every_seconds=null",
    ]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _steps(run: Path) -> list[tuple[str, str]]:
    with open(run / "metrics.csv", newline="") as fh:
        return [
            (row["step"], ",".join(sorted(k for k, v in row.items() if v and k not in ("step", "epoch"))))
            for row in csv.DictReader(fh)
        ]


def _run_folder(results: Path) -> Path:
    (folder,) = (results / "runs").iterdir()
    return folder


def trial(results: Path, samples: int, before: bool, rng: random.Random) -> dict:
    proc = subprocess.Popen(
        _command(results, samples), cwd=results.parent, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    started = time.time()
    if before:
        time.sleep(rng.uniform(6.0, 12.0))
    else:
        while not list(results.glob("runs/*/checkpoints/last.ckpt")) and proc.poll() is None:
            time.sleep(0.2)
        time.sleep(rng.uniform(0.0, 4.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = time.time() - started
    rows_at_kill = len(_steps(_run_folder(results))) if (_run_folder(results) / "metrics.csv").exists() else 0
    done = subprocess.run(_command(results, samples), cwd=results.parent, env=_env(), capture_output=True, text=True)
    run = _run_folder(results)
    record = json.loads((run / "result.json").read_text())
    return {
        "killed_after_s": round(killed_at, 1),
        "rows_at_kill": rows_at_kill,
        "exit": done.returncode,
        "status": record["status"],
        "samples_seen": record["training"]["samples_seen"],
        "steps": _steps(run),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--samples", type=int, default=60000, help="training images per run (~45 s on 1 thread)")
    parser.add_argument("--before", action="store_true", help="kill before the first checkpoint instead")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        reference_dir = Path(tmp) / "reference"
        reference_dir.mkdir()
        subprocess.run(
            _command(reference_dir, args.samples),
            cwd=tmp,
            env=_env(),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        run = _run_folder(reference_dir)
        reference = {
            "steps": _steps(run),
            "samples_seen": json.loads((run / "result.json").read_text())["training"]["samples_seen"],
        }
        trials = []
        for i in range(args.trials):
            results = Path(tmp) / f"trial{i}"
            results.mkdir()
            t = trial(results, args.samples, args.before, rng)
            t["whole"] = (
                t["status"] == "completed"
                and t["steps"] == reference["steps"]
                and t["samples_seen"] == reference["samples_seen"]
            )
            if not t["whole"]:  # which (step, logged keys) rows differ from the uninterrupted run
                t["missing"] = [r for r in reference["steps"] if r not in t["steps"]][:10]
                t["extra"] = [r for r in t["steps"] if r not in reference["steps"]][:10]
            print(
                f"trial {i}: killed after {t['killed_after_s']} s with {t['rows_at_kill']} rows; resumed "
                f"{t['status']}, {len(t['steps'])} rows (reference {len(reference['steps'])}); whole: {t['whole']}",
                flush=True,
            )
            trials.append({k: v for k, v in t.items() if k != "steps"} | {"rows": len(t["steps"])})
    whole = sum(t["whole"] for t in trials)
    print(f"whole: {whole} of {len(trials)} (kill {'before' if args.before else 'after'} the first checkpoint)")
    out = (
        REPO
        / "benchmarks"
        / "results"
        / ("kill_resume_trials_before.json" if args.before else "kill_resume_trials.json")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "whole": whole,
                "trials": len(trials),
                "reference_rows": len(reference["steps"]),
                "samples": args.samples,
                "details": trials,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
