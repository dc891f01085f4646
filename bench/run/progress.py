"""How a training job reports progress: a bar in a terminal, one line per event in sweeps.

Parallel jobs writing bars to one terminal interleave into noise, so inside a Hydra multirun
with several parallel jobs (or when stdout is not a terminal) each job prints one flushed line
when it starts, at each quarter of its budget, and when it ends.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from pytorch_lightning.callbacks import Callback

from bench.core.errors import ConfigError
from bench.core.schema import TRAINING_LOG_KEYS

PROGRESS_MODES = ("auto", "bar", "lines", "none")
#: Milestones as fractions of the training budget.
MILESTONES = (0.25, 0.5, 0.75)


def _parallel_jobs() -> int:
    """Jobs the current Hydra launcher runs at once (1 outside a multirun)."""
    try:
        if not HydraConfig.initialized():
            return 1
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode != RunMode.MULTIRUN:
            return 1
        n_jobs = hydra_cfg.launcher.get("n_jobs", 1)
    except Exception:  # no Hydra context, or a launcher without n_jobs
        return 1
    if n_jobs is None or n_jobs < 0:  # joblib: -1 means one job per core
        return 2
    return int(n_jobs)


def resolve_mode(mode: str, stream: TextIO | None = None) -> str:
    """The concrete mode ('bar', 'lines' or 'none') for a configured `progress` value."""
    if mode not in PROGRESS_MODES:
        raise ConfigError("progress", mode, f"one of {', '.join(PROGRESS_MODES)}")
    if mode != "auto":
        return mode
    stream = stream or sys.stdout
    is_tty = hasattr(stream, "isatty") and stream.isatty()
    return "bar" if is_tty and _parallel_jobs() <= 1 else "lines"


def _budget_fraction(trainer: pl.Trainer) -> float | None:
    """Share of the training budget spent, from `trainer.bench_budget` or the trainer's limits."""
    budget = getattr(trainer, "bench_budget", None)
    if budget is not None and getattr(budget, "fraction", None) is not None:
        return float(budget.fraction)
    if trainer.max_steps and trainer.max_steps > 0:
        return trainer.global_step / trainer.max_steps
    if trainer.max_epochs and trainer.max_epochs > 0:
        return trainer.current_epoch / trainer.max_epochs
    return None


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class LineProgress(Callback):
    """Prints `[run] started`, `[run] 25% ...`, `[run] finished ...` as single flushed lines.

    Only plain Python numbers are read on ordinary steps; logged tensors are converted to
    numbers at the three milestones and at the end, so steps never wait on the device.
    """

    def __init__(self, run_name: str, stream: TextIO | None = None):
        self.run_name = run_name
        self.stream = stream
        self._next = 0
        self._start = 0.0
        self._announced = False

    def _print(self, text: str) -> None:
        print(f"[{self.run_name}] {text}", file=self.stream or sys.stdout, flush=True)

    def _status(self, trainer: pl.Trainer) -> str:
        parts = [f"{time.perf_counter() - self._start:.0f}s", f"step {trainer.global_step}"]
        budget = getattr(trainer, "bench_budget", None)
        samples = getattr(budget, "samples_seen", None)
        if samples is not None:
            parts.append(f"{int(samples)} samples")
        metrics = trainer.callback_metrics
        for key in TRAINING_LOG_KEYS:
            if key in metrics:
                value = metrics[key]
                parts.append(f"{key} {_fmt(float(value))}")
                break
        return " | ".join(parts)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start, self._next, self._announced = time.perf_counter(), 0, False

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        # announced at the first batch: by then every callback's on_train_start has run,
        # including the one that exposes the budget
        if self._announced:
            return
        self._announced = True
        budget = getattr(trainer, "bench_budget", None)
        described = ""
        if budget is not None and getattr(budget, "kind", None) is not None:
            described = f" (budget {budget.kind} {_fmt(getattr(budget, 'value', ''))})"
        self._print(f"started{described}")

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self._next >= len(MILESTONES):
            return
        fraction = _budget_fraction(trainer)
        if fraction is None or fraction < MILESTONES[self._next]:
            return
        while self._next < len(MILESTONES) and fraction >= MILESTONES[self._next]:
            self._next += 1
        self._print(f"{MILESTONES[self._next - 1]:.0%} | {self._status(trainer)}")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._print(f"finished training | {self._status(trainer)}")

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._print(f"stopped by {type(exception).__name__}: {exception}")


def make_progress(
    mode: str = "auto", run_name: str = "run", stream: TextIO | None = None
) -> tuple[list[Callback], bool]:
    """Callbacks and the Trainer's `enable_progress_bar` flag for a `progress` setting.

    'bar' uses Lightning's TQDM bar, 'lines' a `LineProgress`, 'none' nothing; 'auto' picks
    the bar for a terminal outside parallel sweeps and lines otherwise.
    """
    resolved = resolve_mode(mode, stream)
    if resolved == "bar":
        return [], True
    if resolved == "lines":
        return [LineProgress(run_name, stream)], False
    return [], False
