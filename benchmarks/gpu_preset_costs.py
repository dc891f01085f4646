"""Costs of the per-dataset presets' models on one CUDA device, on synthetic data of the preset's shape.

For each `<family>_mnist` and `<family>_cifar10` model config (the sizes `experiment=compare_mnist`
and `compare_cifar10` train), on random uint8 images of the dataset's shape (labelled synthetic:
no real data is read), in the trainer=gpu precision (bf16-mixed autocast):
  step_ms        median time of a training step (forward, backward, optimizer) at the preset's batch
  sample_per_s   images per second drawing the protocol's samples (`sample_batch_size` at a time)
  peak_mb        torch.cuda.max_memory_allocated over the steps and the draw
and, for the MNIST GPT, the KV-cache sampler against re-running the prefix at 784 positions
(16 samples). The sweep wall times the presets state are training budget x runs plus N / sample_per_s
per run. Writes benchmarks/results/gpu_preset_costs.json (or --out).

    python benchmarks/gpu_preset_costs.py [--steps 20] [--draw 1000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from preset_models import preset_model_config

from bench.data.spec import DatasetSpec
from bench.models.build import build_model

SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
FAMILIES = ("cnn_decoder", "gan", "rnn", "gpt")


def _spec(dataset: str) -> DatasetSpec:
    c, h, w = SHAPES[dataset]
    return DatasetSpec(
        f"{dataset}-shaped synthetic",
        c,
        h,
        w,
        256,
        split_seed=0,
        train_size=50_000,
        val_size=5_000,
        test_size=10_000,
        num_classes=10,
    )


DEVICE = "cuda"


def _sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _timed(fn) -> float:
    _sync()
    start = time.perf_counter()
    fn()
    _sync()
    return time.perf_counter() - start


def step_time(module, batch: torch.Tensor, steps: int) -> float:
    """Median seconds of one optimizer step on `batch` (the GAN's own two-player step included)."""
    module.train()
    optimizers = module.configure_optimizers()
    optimizers = optimizers[0] if isinstance(optimizers, tuple) else optimizers
    optimizers = optimizers["optimizer"] if isinstance(optimizers, dict) else optimizers
    optimizers = optimizers if isinstance(optimizers, (list, tuple)) else [optimizers]

    def one() -> None:
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            loss = module.training_loss(batch)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in optimizers:
            opt.step()

    for _ in range(3):
        one()
    return statistics.median(_timed(one) for _ in range(steps))


def draw_rate(module, n: int) -> float:
    module.eval()
    gen = torch.Generator(DEVICE).manual_seed(0)
    with torch.autocast(DEVICE, dtype=torch.bfloat16):
        module.sample(min(n, 16), generator=gen)
        return n / _timed(lambda: module.sample(n, generator=gen))


def kv_cache_ratio(module) -> dict:
    """Seconds to draw 16 MNIST-sized samples with the cache, and re-running the prefix."""
    module.eval()
    out = {}
    for cached in (True, False):
        module.kv_cache = cached
        gen = torch.Generator(DEVICE).manual_seed(0)
        out["cached_s" if cached else "recompute_s"] = _timed(lambda gen=gen: module.sample(16, generator=gen))
    module.kv_cache = True
    out["ratio"] = out["recompute_s"] / out["cached_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--draw", type=int, default=1000, help="images drawn to time sampling")
    parser.add_argument("--device", default="cuda", help="cuda; cpu only to try the script out")
    parser.add_argument("--only", default=None, help="comma-separated model names (default: all eight)")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "results" / "gpu_preset_costs.json"
    )
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    if DEVICE == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_preset_costs.py: needs a CUDA device")
    use_cuda = DEVICE == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True
    result = {
        "device": torch.cuda.get_device_name(0) if use_cuda else "cpu",
        "torch": torch.__version__,
        "data": "synthetic uint8",
        "precision": "bf16 autocast",
        "models": {},
    }
    for dataset in SHAPES:
        spec = _spec(dataset)
        for family in FAMILIES:
            name = f"{family}_{dataset}"
            if args.only and name not in args.only.split(","):
                continue
            cfg = preset_model_config(name)
            torch.manual_seed(0)
            module = build_model(cfg, spec).to(DEVICE)
            batch = torch.randint(0, 256, (int(cfg.batch_size), *spec.shape), dtype=torch.uint8, device=DEVICE)
            if use_cuda:
                torch.cuda.reset_peak_memory_stats()
            row = {"batch_size": int(cfg.batch_size), "step_ms": 1000 * step_time(module, batch, args.steps)}
            row["sample_per_s"] = draw_rate(module, args.draw if family not in ("rnn", "gpt") else args.draw // 2)
            row["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20 if use_cuda else None
            if name == "gpt_mnist":
                row["kv_cache_784"] = kv_cache_ratio(module)
            result["models"][name] = row
            print(name, json.dumps(row), flush=True)
            del module
            if use_cuda:
                torch.cuda.empty_cache()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
