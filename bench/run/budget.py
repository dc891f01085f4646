"""The training budget: wall-clock seconds of training, training images seen, or training FLOPs.

A FLOP budget is counted before training: the model's FLOPs per training image (the count every
record carries, `bench.evaluate.cost.timing.flops`) times the images seen, so it stops at the same
step on every machine, as a samples budget does, while charging each family for what a step costs.

Only time inside training batches counts, so validation, quality curves and checkpointing never
consume the budget. The callback also drives the learning-rate schedule (a fraction of the
budget, not of a step count, so a cosine decay ends when the budget does) and stops runs whose
logged training losses or its weights turn NaN/Inf. It is the first callback, and it checks the losses again
at the end of training and whenever another callback asks (`check_finite`) before touching the
model, so no callback ever samples or evaluates a diverged model.

Under DDP the budget is the run's, not a rank's, and every rank takes the same decisions at the
same step (Lightning does not reconcile `trainer.should_stop`; ranks that disagree hang):
- samples seen are summed over ranks without a collective: the datamodule gives every rank a batch
  of the same size at every step, so the sum is the local batch size times the world size;
- training seconds are rank 0's: each rank times its own batches, and every `CLOCK_SYNC_EVERY`
  batches rank 0's elapsed time is broadcast and added on all ranks (one host sync per interval,
  none per step). Time budgets, the learning-rate schedule and the quality curve read only that
  shared clock, so they advance identically on all ranks;
- the divergence check stops all ranks when any of them sees a non-finite loss or weight.
"""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
import torch

#: How often (in optimizer-loop batches) losses are checked for NaN/Inf; each check syncs once.
FINITE_CHECK_EVERY = 25
#: Under DDP, how often (in batches) rank 0's training time is shared with the other ranks.
CLOCK_SYNC_EVERY = 10


class TrainingBudget(pl.Callback):
    """Stops training when the budget is spent; exposed to other callbacks as `trainer.bench_budget`."""

    def __init__(self, kind: str, value: float, flops_per_image: float | None = None):
        if kind == "flops" and not flops_per_image:
            raise ValueError("a FLOP budget needs the FLOPs per training image")
        self.kind, self.value = kind, float(value)
        self.flops_per_image = flops_per_image
        self.train_seconds = 0.0
        self.samples_seen = 0
        self.batches = 0
        self.stopped_by: str | None = None
        self._t0 = 0.0
        self._unshared_seconds = 0.0  # under DDP: this rank's time since the clock was last shared
        # tracked as tensors each batch (no host sync); read once, when divergence is found
        self._last_finite_loss: torch.Tensor | None = None
        self._last_finite_step: torch.Tensor | None = None
        self.divergence: dict | None = None

    @property
    def train_flops(self) -> float | None:
        """Training FLOPs so far (images seen x FLOPs per training image); None where uncounted."""
        return None if self.flops_per_image is None else self.samples_seen * self.flops_per_image

    @property
    def fraction(self) -> float:
        spent = {"time": self.train_seconds, "samples": self.samples_seen, "flops": self.train_flops}[self.kind]
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
        seconds = time.perf_counter() - self._t0
        self.samples_seen += len(batch[0]) * trainer.world_size  # equal batches on every rank
        self.batches += 1
        if trainer.world_size == 1:
            self.train_seconds += seconds
        else:
            self._unshared_seconds += seconds
            if self.batches % CLOCK_SYNC_EVERY == 0:
                self._share_clock(trainer)
        self._track_last_finite(trainer)
        if self.batches % FINITE_CHECK_EVERY == 0 and not self.check_finite(trainer):
            return
        if self.fraction >= 1.0:
            self.stopped_by = self.kind
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.world_size > 1:
            self._share_clock(trainer)  # the batches since the last share count too
        self.check_finite(trainer)  # before any later callback's on_train_end samples the model

    def _share_clock(self, trainer: pl.Trainer) -> None:
        """Add rank 0's training time since the last share to `train_seconds` on every rank."""
        self.train_seconds += float(trainer.strategy.broadcast(self._unshared_seconds, src=0))
        self._unshared_seconds = 0.0

    @staticmethod
    def _train_losses(trainer: pl.Trainer) -> dict[str, torch.Tensor]:
        return {
            k: v.detach().float()
            for k, v in trainer.callback_metrics.items()
            if k.startswith("train/") and torch.is_tensor(v)
        }

    def _track_last_finite(self, trainer: pl.Trainer) -> None:
        losses = self._train_losses(trainer)
        if not losses:
            return
        values = torch.stack(list(losses.values()))
        loss = losses.get("train/loss", values[0])
        finite = torch.isfinite(values).all()
        step = torch.full((), trainer.global_step, device=values.device)
        if self._last_finite_loss is None:
            self._last_finite_loss = torch.full_like(loss, float("nan"))
            self._last_finite_step = torch.full_like(step, -1)
        self._last_finite_loss = torch.where(finite, loss, self._last_finite_loss)
        self._last_finite_step = torch.where(finite, step, self._last_finite_step)

    def check_finite(self, trainer: pl.Trainer) -> bool:
        """True while the logged training losses and the weights are finite (an optimizer step can
        turn the weights NaN after a finite loss); otherwise record the divergence (`stopped_by`,
        `divergence`), stop training and return False. One host sync per call."""
        if self.stopped_by == "diverged":
            return False
        checks = [torch.isfinite(v).all() for v in self._train_losses(trainer).values()]
        module = trainer.lightning_module
        if module is not None:
            checks += [torch.isfinite(p.detach()).all() for p in module.parameters()]
        finite = not checks or bool(torch.stack([c.cpu() for c in checks]).all())
        if trainer.world_size > 1:  # one rank's NaN stops them all, at the same step
            finite = trainer.strategy.reduce_boolean_decision(finite, all=True)
        if finite:
            return True
        self.stopped_by = "diverged"
        trainer.should_stop = True
        last_loss = None if self._last_finite_loss is None else float(self._last_finite_loss)
        last_step = None if self._last_finite_step is None else int(self._last_finite_step)
        self.divergence = {
            "detected_at_step": trainer.global_step,
            "last_finite_step": last_step if last_step is not None and last_step >= 0 else None,
            "last_finite_loss": last_loss if last_loss is not None and last_loss == last_loss else None,
        }
        return False

    def divergence_message(self) -> str:
        """One line for the record: where training diverged and the last finite loss."""
        d = self.divergence or {}
        loss = d.get("last_finite_loss")
        last = (
            f"last finite train/loss {loss:.4g} at step {d.get('last_finite_step')}"
            if loss is not None
            else "no finite train/loss logged before"
        )
        return f"training loss or weights became NaN/Inf (detected at step {d.get('detected_at_step')}; {last})"

    def state_dict(self) -> dict:
        return {"train_seconds": self.train_seconds, "samples_seen": self.samples_seen, "batches": self.batches}

    def load_state_dict(self, state: dict) -> None:
        self.train_seconds = state["train_seconds"]
        self.samples_seen = state["samples_seen"]
        self.batches = state.get("batches", 0)
