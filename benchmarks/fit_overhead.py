"""Overhead of the suite's training path (`bench.run.fit.fit`) over a plain PyTorch loop.

For each model (default: the GPT and the LSTM on digits, 1 thread), the same module, data,
optimizer and number of training images are trained three ways, interleaved and repeated:
  plain  a `for x, _ in loader: loss.backward(); opt.step()` loop (no validation, no checkpoints);
  suite  `fit()` with the config as shipped (budget callback, validation, checkpoints, deterministic);
  variants of the suite that switch one cost on or off (validation after every epoch, as before
  `validation_every`; deterministic mode; deterministic mode filling every new tensor),
so the ratios say where the time goes. Ratio = median suite seconds / median plain seconds
(target <= 1.10). Writes benchmarks/results/fit_overhead.json. Timings are wall-clock: run it
on a quiet machine.

    python benchmarks/fit_overhead.py [--samples 6000] [--repeats 3] [--models gpt,rnn]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from result_file import machine, write  # noqa: E402

from bench.config.choices import CONF_DIR, _quiet_lightning  # noqa: E402
from bench.data import ImageDataModule  # noqa: E402
from bench.models.build import build_model  # noqa: E402
from bench.run.fit import fit  # noqa: E402

#: Suite variants: name -> (config overrides on top of the shipped config, whether deterministic
#: mode fills new tensors, as it did before bench.pipeline.train_task switched that off).
VARIANTS = {
    "suite": ([], False),
    "suite_filling_new_tensors": ([], True),
    "suite_no_deterministic": (["trainer.deterministic=false"], False),
    "suite_validating_every_epoch": (["validation_every=null"], False),
}


def _config(model: str, samples: int, extra: list[str]):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(
            "config",
            overrides=[
                f"model={model}",
                "budget=samples",
                f"budget.value={samples}",
                "logger=none",
                "progress=none",
                "threads=1",
                "protocol.quality_curve.every_seconds=null",
                *extra,
            ],
        )


def _fresh(cfg) -> tuple[pl.LightningModule, ImageDataModule]:
    pl.seed_everything(0, verbose=False)
    dm = ImageDataModule(batch_size=int(cfg.model.batch_size), **dict(cfg.dataset))
    return build_model(cfg.model, dm.spec), dm


def plain_loop(cfg, samples: int) -> float:
    """Seconds of a bare loop over the same images, model and optimizer."""
    module, dm = _fresh(cfg)
    dm.setup("fit")
    torch.use_deterministic_algorithms(False)  # a previous fit() with `deterministic: true` left it on
    optimizer = module.configure_optimizers()
    optimizer = optimizer[0][0] if isinstance(optimizer, tuple) else optimizer
    module.train()
    seen, start = 0, time.perf_counter()
    while seen < samples:
        for x, _ in dm.train_dataloader():
            loss = module.training_loss(x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(x)
            if seen >= samples:
                break
    return time.perf_counter() - start


def suite_fit(cfg, root: Path, fill: bool) -> float:
    """Seconds of `fit()` with `cfg` (a fresh run folder, so nothing resumes)."""
    module, dm = _fresh(cfg)
    run_dir = Path(tempfile.mkdtemp(dir=root))
    torch.utils.deterministic.fill_uninitialized_memory = fill
    try:
        start = time.perf_counter()
        fit(module, dm, cfg, run_dir, None, [], False)
        return time.perf_counter() - start
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = False


def measure(model: str, samples: int, repeats: int, root: Path) -> dict:
    times: dict[str, list[float]] = {"plain": [], **{name: [] for name in VARIANTS}}
    configs = {name: _config(model, samples, extra) for name, (extra, _) in VARIANTS.items()}
    plain_loop(configs["suite"], min(samples, 512))  # warm-up: allocator, kernels
    for _ in range(repeats):  # interleaved, so a slow spell of the machine hits every variant
        times["plain"].append(plain_loop(configs["suite"], samples))
        for name, cfg in configs.items():
            times[name].append(suite_fit(cfg, root, VARIANTS[name][1]))
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratios = {name: medians[name] / medians["plain"] for name in VARIANTS}
    for name, ratio in ratios.items():
        print(f"{model}: {name} / plain = {ratio:.3f} ({medians[name]:.2f} s vs {medians['plain']:.2f} s)", flush=True)
    return {
        "samples": samples,
        "repeats": repeats,
        "seconds": times,
        "median_seconds": medians,
        "ratios": ratios,
        "target": "suite / plain <= 1.10",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=6000, help="training images per fit")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="gpt,rnn")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "fit_overhead.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.utils.deterministic.fill_uninitialized_memory = False  # as bench.pipeline.train_task sets it
    _quiet_lightning()
    result = machine(threads=1)
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        result["models"] = {m: measure(m, args.samples, args.repeats, Path(tmp)) for m in args.models.split(",")}
    write(result, args.out)


if __name__ == "__main__":
    main()
