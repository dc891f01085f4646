"""Quality over training time: a cheap FID against the validation split at fixed intervals.

Intervals are in TRAINING wall-clock seconds; the callback's own cost is kept in
`eval_seconds` so the training code can add it back to the budget (evaluation must not consume
it). Progress comes from `trainer.bench_budget` (attributes `train_seconds`, `samples_seen`)
when the training code provides it, else the callback counts itself; the budget is also asked
whether the losses are still finite before each measurement, so a diverged model is never sampled.
"""

from __future__ import annotations

import time

import pytorch_lightning as pl
import torch

from bench.config.protocol import Protocol
from bench.core.errors import ConfigError
from bench.evaluate.metrics.feature_metrics import frechet_distance
from bench.evaluate.reference_set import extractor_for
from bench.evaluate.scored_sampling import at_temperature_one


class QualityCurve(pl.Callback):
    """Records `curve = [{train_seconds, samples_seen, train_flops, fid}]` every `every_seconds` of
    training (`train_flops`: null where the budget has no FLOP count)."""

    def __init__(self, datamodule, protocol_cfg, every_seconds: float, n_samples: int = 200):
        if every_seconds <= 0:
            raise ConfigError("quality_curve.every_seconds", every_seconds, "a positive number of seconds")
        if n_samples < 2:
            raise ConfigError("quality_curve.n_samples", n_samples, "an integer >= 2")
        self.datamodule, self.protocol = datamodule, Protocol.from_config(protocol_cfg)
        self.every_seconds, self.n_samples = float(every_seconds), int(n_samples)
        self.curve: list[dict[str, float]] = []
        self.eval_seconds = 0.0
        self._next = self.every_seconds
        self._start: float | None = None
        self._samples_seen = 0
        self._extractor = None

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def _progress(self, trainer) -> tuple[float, int, float | None]:
        budget = getattr(trainer, "bench_budget", None)
        if budget is not None:
            return float(budget.train_seconds), int(budget.samples_seen), budget.train_flops
        return time.perf_counter() - self._start - self.eval_seconds, self._samples_seen, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._samples_seen += len(batch[0])
        progress = self._progress(trainer)
        if progress[0] >= self._next:
            # skip missed intervals rather than measuring several times in a row after a slow step
            while self._next <= progress[0]:
                self._next += self.every_seconds
            self.measure(trainer, pl_module, *progress)

    def on_train_end(self, trainer, pl_module) -> None:
        progress = self._progress(trainer)
        if not self.curve or self.curve[-1]["samples_seen"] != progress[1]:
            self.measure(trainer, pl_module, *progress)

    def measure(
        self, trainer, pl_module, train_seconds: float, samples_seen: int, train_flops: float | None = None
    ) -> None:
        """Append one point (rank 0 only); its time goes to `eval_seconds`. Nothing is measured
        once the budget callback finds the training losses non-finite."""
        check_finite = getattr(getattr(trainer, "bench_budget", None), "check_finite", None)
        if check_finite is not None and not check_finite(trainer):
            return
        if not trainer.is_global_zero:
            return
        t0 = time.perf_counter()
        device = pl_module.device
        # building the extractor initialises a network: on a forked RNG, so that when (in wall-clock
        # time) the curve fires never changes what training draws next
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), at_temperature_one(pl_module):
            if self._extractor is None:
                self._extractor = extractor_for(self.datamodule, self.protocol)
            generator = torch.Generator(device).manual_seed(self.protocol.seed)
            samples = pl_module.sample(self.n_samples, generator=generator)
            fid = frechet_distance(self._extractor.features(), self.datamodule.val_images, samples)
        self.curve.append(
            {"train_seconds": train_seconds, "samples_seen": samples_seen, "train_flops": train_flops, "fid": fid}
        )
        self.eval_seconds += time.perf_counter() - t0
