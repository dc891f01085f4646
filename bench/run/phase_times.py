"""Wall-clock seconds of a run's phases: start-up, training, validation, checkpointing, evaluation.

`PhaseTimes` is a Lightning callback for the phases inside `fit` (validation between its start
and end hooks; checkpointing by wrapping `trainer.save_checkpoint`, which every checkpoint goes
through); the training code adds start-up and evaluation around it.
"""

from __future__ import annotations

import time

import pytorch_lightning as pl


class PhaseTimes(pl.Callback):
    """Accumulates `validation` and `checkpointing` seconds and marks when training starts."""

    def __init__(self, started: float | None = None) -> None:
        self.started = time.perf_counter() if started is None else started
        self.seconds = {"startup": None, "validation": 0.0, "checkpointing": 0.0}
        self._validation_start: float | None = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        save = trainer.save_checkpoint

        def timed_save(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return save(*args, **kwargs)
            finally:
                self.seconds["checkpointing"] += time.perf_counter() - t0

        trainer.save_checkpoint = timed_save

    def on_train_start(self, trainer, pl_module) -> None:
        if self.seconds["startup"] is None:
            self.seconds["startup"] = time.perf_counter() - self.started

    def on_validation_start(self, trainer, pl_module) -> None:
        self._validation_start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._validation_start is not None:
            self.seconds["validation"] += time.perf_counter() - self._validation_start
            self._validation_start = None


def phase_seconds(phases: PhaseTimes | None, training: float, evaluation: float) -> dict[str, float | None]:
    """The record's `timing.phases`: seconds per phase (None where the run had no such phase)."""
    seconds = phases.seconds if phases is not None else {"startup": None, "validation": None, "checkpointing": None}
    return {
        "startup": seconds["startup"],
        "training": training,
        "validation": seconds["validation"],
        "checkpointing": seconds["checkpointing"],
        "evaluation": evaluation,
    }
