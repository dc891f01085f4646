"""The sample-quality selection statistic, measured at every validation and logged for checkpointing.

Protocol v5 scores every trained run's sample metrics at the checkpoint where this statistic (FID or
KID of `protocol.selection_n` generated images against the validation split, in the reference
classifier's features) was lowest. It is logged as `val/fid` (or `val/kid`) so that Lightning's
`ModelCheckpoint` and `EarlyStopping` can monitor it like any validation metric. Every validation
draws its samples with the same seed, so two checkpoints differ by their weights, not by their luck.
The images of the reference (test) split are never read here: tuning runs on this alone.
"""

from __future__ import annotations

import time

import pytorch_lightning as pl
import torch

from bench.config.protocol import Protocol, derived_seed
from bench.evaluate.metrics.feature_metrics import frechet_distance, kernel_distance
from bench.evaluate.reference_set import extractor_for
from bench.evaluate.scored_sampling import at_temperature_one


class ValidationQuality(pl.Callback):
    """Logs `protocol.selection_monitor` at the end of every validation; its cost is `eval_seconds`."""

    def __init__(self, datamodule, protocol_cfg):
        self.datamodule, self.protocol = datamodule, Protocol.from_config(protocol_cfg)
        self.monitor = self.protocol.selection_monitor
        self.eval_seconds = 0.0
        self._extractor = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # before training, not inside validation: validation runs in inference mode, where a
        # reference network that is not cached yet could not be trained
        if self._extractor is None:
            devices = [pl_module.device] if pl_module.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):  # the network's training never shifts the run's draws
                self._extractor = extractor_for(self.datamodule, self.protocol)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        check_finite = getattr(getattr(trainer, "bench_budget", None), "check_finite", None)
        finite = check_finite is None or check_finite(trainer)
        started = time.perf_counter()
        value = self.measure(pl_module) if finite else float("inf")  # a diverged model is never sampled
        self.eval_seconds += time.perf_counter() - started
        # every rank computes the same value (same weights, same seed), so no reduction is needed
        pl_module.log(self.monitor, value, on_step=False, on_epoch=True, prog_bar=True, sync_dist=False)

    @torch.no_grad()
    def measure(self, pl_module: pl.LightningModule) -> float:
        """The statistic of `selection_n` samples of `pl_module` against the validation images."""
        device = pl_module.device
        # on a forked RNG: when validation happens never changes what training draws next
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), at_temperature_one(pl_module):
            generator = torch.Generator(device).manual_seed(derived_seed(self.protocol.seed, "selection", 0))
            samples = pl_module.sample(self.protocol.selection_n, generator=generator)
        features, real = self._extractor.features(), self.datamodule.val_images
        if self.protocol.selection_statistic == "kid":
            seed = derived_seed(self.protocol.seed, "selection-kid", 0)
            return kernel_distance(
                features, real, samples, self.protocol.kid_subset_size, self.protocol.kid_subsets, seed
            )[0]
        return frechet_distance(features, real, samples)
