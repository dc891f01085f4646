"""GPT sampling with the KV cache vs re-running the prefix, at 784 positions (28x28x1, 256 levels).

The network is the MNIST preset's GPT (`model=gpt_mnist`, untrained: the cost does not depend on
the weights), one thread, 16 samples per batch. The cached path is timed over a whole sampling
call (784 steps). Re-running the prefix costs sum over t of a forward pass over t tokens: about
400 times a cached step at this length, i.e. tens of minutes at one thread; so unless `--full`
is given it is timed at `--points` prefix lengths spread over 1..784 (each one step of
`PixelGPT.generate`'s uncached branch: forward over the prefix, then a draw) and summed over every
t by linear interpolation. Ratio = recompute seconds / cached seconds (target >= 50).

Prints the ratio and writes it to benchmarks/results/gpt_kv_cache.json.

    python benchmarks/gpt_kv_cache.py [--samples 16] [--points 9] [--full]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from preset_models import preset_model_config

from bench.data.spec import DatasetSpec
from bench.models.build import build_model
from bench.models.gpt import PixelGPT
from bench.models.pixel_tokens import draw

RESULTS = Path(__file__).resolve().parent / "results"
MNIST_SHAPE = DatasetSpec(
    "mnist-shaped",
    channels=1,
    height=28,
    width=28,
    levels=256,
    split_seed=0,
    train_size=55_000,
    val_size=5_000,
    test_size=10_000,
)


def preset_gpt() -> PixelGPT:
    torch.manual_seed(0)
    return build_model(preset_model_config("gpt_mnist"), MNIST_SHAPE).eval()


def seconds(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


@torch.no_grad()
def uncached_step_seconds(model: PixelGPT, n: int, prefix: int, generator: torch.Generator) -> float:
    """One step of the uncached branch of `generate`: logits from a forward over `prefix` tokens, a draw."""
    seq = torch.randint(0, model.net.levels, (n, prefix), generator=generator)
    return seconds(lambda: draw(model.net(seq)[:, -1], generator))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--points", type=int, default=9, help="prefix lengths timed for the recompute path")
    parser.add_argument("--full", action="store_true", help="time the whole uncached sampling call instead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, n, length = preset_gpt(), args.samples, MNIST_SHAPE.dims
    g = torch.Generator().manual_seed(0)

    with torch.no_grad():
        model.net(torch.zeros(n, 8, dtype=torch.long))  # warm up: first calls pay one-off setup costs
        model.kv_cache = True
        cached = seconds(lambda: model.generate(n, g))
        if args.full:
            model.kv_cache = False
            recompute, how = seconds(lambda: model.generate(n, g)), "timed in full"
        else:
            prefixes = np.unique(np.linspace(1, length, args.points).round().astype(int))
            per_step = [uncached_step_seconds(model, n, int(t), g) for t in prefixes]
            recompute = float(np.interp(np.arange(1, length + 1), prefixes, per_step).sum())
            how = f"{len(prefixes)} prefix lengths timed, summed over t = 1..{length} by interpolation"

    result = {
        "benchmark": "gpt_kv_cache",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "positions": length,
        "samples_per_batch": n,
        "threads": torch.get_num_threads(),
        "model": "gpt_mnist",
        "parameters": model.num_parameters(),
        "cached_seconds": round(cached, 3),
        "recompute_seconds": round(recompute, 3),
        "recompute_measured": how,
        "speedup": round(recompute / cached, 1),
        "target": ">= 50",
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    print(f"GPT sampling at {length} positions, {n} samples, 1 thread, {result['parameters']:,} parameters:")
    print(f"  KV cache  {cached:8.2f} s")
    print(f"  recompute {recompute:8.2f} s  ({how})")
    print(f"  speedup   {recompute / cached:8.1f}x  (target >= 50x)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gpt_kv_cache.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
