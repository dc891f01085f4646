"""Every validation's metrics, in order, with where in training it happened.

The record keeps this history (`curves.validation`) so a reader can see how far the selected
checkpoint is from the final weights, and so each table's selected checkpoint can also name the
other table's validation metric at the same step.
"""

from __future__ import annotations

import math

import pytorch_lightning as pl


class ValidationHistory(pl.Callback):
    """`rows = [{step, samples_seen, train_seconds, train_flops, "val/...": value, ...}]`, one per validation."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float | int | None]] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        budget = getattr(trainer, "bench_budget", None)
        row: dict[str, float | int | None] = {
            "step": int(trainer.global_step),
            "samples_seen": int(budget.samples_seen) if budget is not None else None,
            "train_seconds": float(budget.train_seconds) if budget is not None else None,
            "train_flops": budget.train_flops if budget is not None else None,
        }
        for name, value in sorted(trainer.callback_metrics.items()):
            if name.startswith("val/"):
                number = float(value)
                row[name] = number if math.isfinite(number) else None
        self.rows.append(row)

    def at_step(self, step: int | None) -> dict:
        """The last validation row taken at optimizer step `step` ({} if none was)."""
        matches = [row for row in self.rows if row["step"] == step]
        return matches[-1] if matches else {}

    def state_dict(self) -> dict:
        return {"rows": list(self.rows)}  # a resumed run keeps the history it had

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = list(state_dict.get("rows", []))
