"""How much the recorded sampling speed of one model varies across seeds (target: <= 15%).

For each model, one fresh process per seed builds the model as `bench-train` would (digits,
1 thread) and measures sampling exactly as the protocol does (`timed_sample`: a warm-up draw,
then the median of 3 timed draws of N images). Spread = (max - min) / median over the seeds, of wall-clock speed (the report's) and of
speed per CPU second of the sampling process.
Prints the spreads and writes benchmarks/results/sampling_spread.json. Run it on a quiet machine:
other processes' load is the noise this measures.

    python benchmarks/sampling_spread.py [--models gpt,rnn,cnn_decoder] [--seeds 3] [--n 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from result_file import machine, write

REPO = Path(__file__).resolve().parent.parent

ONE_SEED = """
import json, sys, torch
from hydra import compose, initialize_config_dir
torch.set_num_threads(1)
from bench.data import ImageDataModule
from bench.config.protocol import scoring_seed
from bench.evaluate.cost.timing import timed_sample
from bench.models.build import build_model
from bench.pipeline.train_task import CONF_DIR
model, seed, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
    cfg = compose("config", overrides=[f"model={model}", f"seed={seed}"])
torch.manual_seed(seed)
dm = ImageDataModule(batch_size=int(cfg.model.batch_size), **dict(cfg.dataset))
module = build_model(cfg.model, dm.spec)
_, speed = timed_sample(module, n, scoring_seed(int(cfg.protocol.seed), seed))
print(json.dumps(speed))
"""


def one(model: str, seed: int, n: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", ONE_SEED, model, str(seed), str(n)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="gpt,rnn,cnn_decoder")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "sampling_spread.json")
    args = parser.parse_args()
    result = machine(threads=1, n=args.n, models={})
    for model in args.models.split(","):
        measured = [one(model, seed, args.n) for seed in range(args.seeds)]
        result["models"][model] = {"target": "<= 0.15"}
        for key in ("sample_images_per_s", "sample_images_per_cpu_s"):
            speeds = [m[key] for m in measured]
            spread = (max(speeds) - min(speeds)) / statistics.median(speeds)
            result["models"][model].update({key: speeds, f"{key}_spread": spread})
            print(
                f"{model}: {key} over seeds {', '.join(f'{s:.0f}' for s in speeds)}: "
                f"spread {100 * spread:.1f}% (target <= 15%)",
                flush=True,
            )
    write(result, args.out)


if __name__ == "__main__":
    main()
