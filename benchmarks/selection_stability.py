"""Is the checkpoint that the sample-quality rule picks stable under resampling? (protocol v5)

    python benchmarks/selection_stability.py [--models gpt gan] [--samples 50000] [--resamples 500]

Trains each model on digits (samples budget, validation every 20 x |val|) with a callback that, at
every validation, draws 1,000 images with a fixed seed and keeps their reference-classifier
features. Then, per resample, the 150 validation features are bootstrapped and 500 of the 1,000
generated ones drawn at each checkpoint, the statistic (FID, or unbiased KID with the cubic
polynomial kernel) is computed per checkpoint, and the argmin noted. Reported per model and
statistic: the share of resamples that pick the checkpoint the full data picks, the share within
one validation of it, and the regret (full-data FID at the resampled pick over the best, relative).
Writes `benchmarks/results/selection_stability.json`.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from scipy import linalg

from bench.config.compose import compose_all
from bench.config.protocol import Protocol
from bench.data import ImageDataModule
from bench.evaluate.reference_set import extractor_for
from bench.models.build import build_model
from bench.run.fit import fit

N_DRAWN, N_USED = 1000, 500


class KeepFeatures(pl.Callback):
    def __init__(self, dm):
        self.dm, self.rows = dm, []
        self.features = extractor_for(dm, Protocol()).features()

    def on_validation_epoch_end(self, trainer, module):
        with torch.random.fork_rng(devices=[]):
            images = module.sample(N_DRAWN, generator=torch.Generator().manual_seed(7))
        self.rows.append((trainer.global_step, self.features(images).numpy()))
        module.log("val/fid", float(len(self.rows)))  # fit's quality monitor; selection is done here


def fid(a: np.ndarray, b: np.ndarray) -> float:
    mu = a.mean(0) - b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(ca @ cb).real
    return float(mu @ mu + np.trace(ca + cb - 2 * covmean))


def kid(a: np.ndarray, b: np.ndarray) -> float:
    d = a.shape[1]

    def k(x, y):
        return (x @ y.T / d + 1) ** 3

    kxx, kyy, kxy = k(a, a), k(b, b), k(a, b)
    m, n = len(a), len(b)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()
    )


def stability(rows, val: np.ndarray, resamples: int, rng: np.random.Generator) -> dict:
    full_fid = np.array([fid(feats, val) for _, feats in rows])
    out = {"steps": [s for s, _ in rows], "full_fid": full_fid.round(2).tolist()}
    for name, stat in (("fid", fid), ("kid", kid)):
        nominal = int(np.argmin([stat(feats, val) for _, feats in rows]))
        picks = []
        for _ in range(resamples):
            v = val[rng.integers(0, len(val), len(val))]
            values = [stat(feats[rng.choice(N_DRAWN, N_USED, replace=False)], v) for _, feats in rows]
            picks.append(int(np.argmin(values)))
        picks = np.array(picks)
        regret = full_fid[picks] / full_fid.min() - 1
        out[name] = {
            "nominal_pick": nominal,
            "same_pick": float(np.mean(picks == nominal)),
            "within_one_validation": float(np.mean(np.abs(picks - nominal) <= 1)),
            "regret_median": float(np.median(regret)),
            "regret_p95": float(np.quantile(regret, 0.95)),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["gpt", "gan"])
    parser.add_argument("--samples", type=int, default=50000)
    parser.add_argument("--resamples", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "selection_stability.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results, rng = {}, np.random.default_rng(0)
    for model in args.models:
        (cfg,) = compose_all([[f"model={model}", "budget=samples", f"budget.value={args.samples}", "logger=none"]])
        pl.seed_everything(0, workers=True, verbose=False)
        dm = ImageDataModule(batch_size=int(cfg.model.batch_size), **cfg.dataset)
        module = build_model(cfg.model, dm.spec)
        keep = KeepFeatures(dm)
        folder = Path("/tmp") / f"selection_stability_{model}"
        shutil.rmtree(folder, ignore_errors=True)  # else fit resumes from its last.ckpt
        fit(module, dm, cfg, folder, None, [keep], False, quality_monitor="val/fid")
        val = keep.features(dm.val_images).numpy()
        results[model] = stability(keep.rows, val, args.resamples, rng)
        r = results[model]
        print(
            f"{model}: {len(keep.rows)} validations; full-data FID {r['full_fid']}\n"
            + "\n".join(
                f"  {s}: picks validation {r[s]['nominal_pick']} (full data); resampled picks the same "
                f"{r[s]['same_pick']:.0%}, within one validation {r[s]['within_one_validation']:.0%}; "
                f"regret median {r[s]['regret_median']:.1%}, 95th percentile {r[s]['regret_p95']:.1%}"
                for s in ("fid", "kid")
            ),
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
