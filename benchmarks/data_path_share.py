"""The data path's share of a training step at CIFAR-10's size (target <= 5%).

Synthetic uint8 images of CIFAR-10's shape (45,000 x 3 x 32 x 32 training images, in memory as
the real set is) go through `ImageDataModule.train_dataloader()` — the sampler, the one index
gather per batch — with the CIFAR-10 preset's model config and batch size (`model=<family>_cifar10`).

Per family, one run: the data path alone (iterating the loader) and whole Lightning training
steps (`Trainer.fit`, data included) are timed per batch; share = data / step. By default the two
cheapest steps of the preset (VAE, GAN) are measured: the data path costs the same whatever the
model, so the cheapest step gives the largest share. One thread; on a GPU the step shrinks and
the share grows — the data path's absolute time per batch is printed to compare with a GPU step.

Prints the shares and writes them to benchmarks/results/data_path_share.json.

    python benchmarks/data_path_share.py [--families cnn_decoder,gan] [--steps 3] [--batches 200]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import pytorch_lightning as pl
import torch
from preset_models import preset_model_config

from bench.data import ImageDataModule
from bench.data.spec import DatasetSpec
from bench.models.base import GenerativeModule
from bench.models.build import build_model

RESULTS = Path(__file__).resolve().parent / "results"
TRAIN_IMAGES = 45_000  # CIFAR-10's 50,000 training images less the preset's 5,000 for validation
CIFAR_SHAPE = DatasetSpec(
    "cifar10-shaped",
    channels=3,
    height=32,
    width=32,
    levels=256,
    split_seed=0,
    train_size=TRAIN_IMAGES,
    val_size=5_000,
    test_size=10_000,
)


def cifar_shaped_datamodule(batch_size: int) -> ImageDataModule:
    """The project's datamodule holding random uint8 images of CIFAR-10's shape as its train split."""
    dm = ImageDataModule("procedural", val_size=8, test_size=8, batch_size=batch_size, source_args={"n": 32})
    g = torch.Generator().manual_seed(0)
    dm.train_images = torch.randint(0, 256, (TRAIN_IMAGES, 3, 32, 32), generator=g, dtype=torch.uint8)
    dm.train_labels = torch.randint(0, 10, (TRAIN_IMAGES,), generator=g)
    return dm


def data_seconds_per_batch(dm: ImageDataModule, batches: int) -> float:
    loader = iter(dm.train_dataloader())
    next(loader)  # the first batch builds the sampler's permutation: not a per-step cost
    started = time.perf_counter()
    for _ in range(batches):
        next(loader)
    return (time.perf_counter() - started) / batches


class StepClock(pl.Callback):
    """Times between the starts of consecutive training batches (fetching the batch included)."""

    def __init__(self):
        self.starts: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.starts.append(time.perf_counter())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.end = time.perf_counter()

    def seconds_per_step(self, skip: int = 1) -> float:
        """Mean over the steps after the first `skip` (warm-up)."""
        marks = [*self.starts, self.end][skip:]
        return (marks[-1] - marks[0]) / (len(marks) - 1)


def step_seconds(model: GenerativeModule, dm: ImageDataModule, steps: int) -> float:
    """Seconds per Lightning training step (data included), after one warm-up step."""
    clock = StepClock()
    trainer = pl.Trainer(
        max_steps=steps + 1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[clock],
    )
    trainer.fit(model, train_dataloaders=dm.train_dataloader())
    return clock.seconds_per_step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", default="cnn_decoder,gan")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per family (after one warm-up)")
    parser.add_argument("--batches", type=int, default=200, help="batches drawn to time the data path")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for family in args.families.split(","):
        cfg = preset_model_config(f"{family}_cifar10")
        batch = int(cfg.batch_size)
        dm = cifar_shaped_datamodule(batch)
        data = data_seconds_per_batch(dm, args.batches)
        torch.manual_seed(0)
        step = step_seconds(build_model(cfg, CIFAR_SHAPE), dm, args.steps)
        rows.append(
            {
                "family": family,
                "model": f"{family}_cifar10",
                "batch_size": batch,
                "data_ms_per_batch": round(1e3 * data, 3),
                "step_ms": round(1e3 * step, 1),
                "data_share": round(data / step, 5),
            }
        )
        print(
            f"{family:12s} batch {batch:4d}: data {1e3 * data:7.3f} ms, step {1e3 * step:9.1f} ms, "
            f"share {100 * data / step:.3f}%  (target <= 5%; on a GPU a step must take >= "
            f"{20e3 * data:.1f} ms for <= 5%)"
        )
    result = {
        "benchmark": "data_path_share",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "train_images": TRAIN_IMAGES,
        "data": "synthetic uint8 of CIFAR-10's shape through ImageDataModule.train_dataloader",
        "rows": rows,
        "target": "<= 0.05",
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "data_path_share.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
