"""The training budget: wall-clock seconds of training or training images seen.

Only time inside training batches counts, so validation, quality curves and checkpointing never
consume the budget. The callback also drives the learning-rate schedule (a fraction of the
budget, not of a step count, so a cosine decay ends when the budget does) and stops runs whose
logged training losses turn NaN/Inf.
"""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
import torch

#: How often (in optimizer-loop batches) losses are checked for NaN/Inf; each check syncs once.
FINITE_CHECK_EVERY = 25


class TrainingBudget(pl.Callback):
    """Stops training when the budget is spent; exposed to other callbacks as `trainer.bench_budget`."""

    def __init__(self, kind: str, value: float):
        self.kind, self.value = kind, float(value)
        self.train_seconds = 0.0
        self.samples_seen = 0
        self.batches = 0
        self.stopped_by: str | None = None
        self._t0 = 0.0

    @property
    def fraction(self) -> float:
        spent = self.train_seconds if self.kind == "time" else self.samples_seen
        return min(spent / self.value, 1.0)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.bench_budget = self  # type: ignore[attr-defined]
        for opt in trainer.optimizers:
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])  # survives resume via the optimizer state
        if self.fraction >= 1.0:  # resumed from a checkpoint taken after the budget was spent
            self.stopped_by = self.kind
            trainer.should_stop = True

    def on_train_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int) -> None:
        factor = pl_module.lr_factor(self.fraction)
        for opt in trainer.optimizers:
            for group in opt.param_groups:
                group["lr"] = group["initial_lr"] * factor
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.train_seconds += time.perf_counter() - self._t0
        self.samples_seen += len(batch[0])
        self.batches += 1
        if self.batches % FINITE_CHECK_EVERY == 0 and not self._losses_finite(trainer):
            self.stopped_by = "diverged"
            trainer.should_stop = True
        elif self.fraction >= 1.0:
            self.stopped_by = self.kind
            trainer.should_stop = True

    @staticmethod
    def _losses_finite(trainer: pl.Trainer) -> bool:
        losses = [v for k, v in trainer.callback_metrics.items() if k.startswith("train/") and torch.is_tensor(v)]
        return not losses or bool(torch.isfinite(torch.stack([v.detach().float().cpu() for v in losses])).all())

    def state_dict(self) -> dict:
        return {"train_seconds": self.train_seconds, "samples_seen": self.samples_seen, "batches": self.batches}

    def load_state_dict(self, state: dict) -> None:
        self.train_seconds = state["train_seconds"]
        self.samples_seen = state["samples_seen"]
        self.batches = state.get("batches", 0)
