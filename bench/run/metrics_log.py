"""`metrics.csv` that survives a resume: one row per logged step over the whole run, once.

Lightning's CSV logger deletes `metrics.csv` when it starts, so a run resumed from `last.ckpt`
would keep only the rows logged after the resume. Here the rows logged before the checkpoint are
kept, and the rows of steps the killed process logged after it (which the resumed run replays)
are dropped, so the file reads as if the run had never stopped. Rows buffered in memory are
written before each checkpoint, so every row before a checkpoint is on disk when it exists.
"""

from __future__ import annotations

import csv
import io
import os

import pytorch_lightning as pl
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from bench.core.atomic import write_bytes_atomic


def _logged_before(row: dict[str, str], step: int) -> bool:
    """Whether a run resumed from a checkpoint at logger step `step` will not log `row` again.

    Lightning saves `last.ckpt` after a batch's optimizer step but before that batch's row (and,
    at an epoch's end, its validation) is logged at the same step; the resumed run continues at
    the next step, so rows up to and including `step` come only from the earlier process.
    """
    return row.get("step", "").isdigit() and int(row["step"]) <= step


def rows_before(path: str, step: int) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows of the CSV at `path` that a run resumed at logger step `step` keeps."""
    if step <= 0 or not os.path.isfile(path):
        return [], []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [row for row in reader if _logged_before(row, step)]
        return list(reader.fieldnames or []), rows


class _KeepingWriter(ExperimentWriter):
    """Starts from the earlier rows instead of deleting the file."""

    def __init__(self, log_dir: str, keep_rows_before: int) -> None:
        self._keep_rows_before = keep_rows_before
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        header, rows = rows_before(self.metrics_file_path, self._keep_rows_before)
        if not rows:
            if os.path.isfile(self.metrics_file_path):
                os.remove(self.metrics_file_path)
            return
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
        write_bytes_atomic(self.metrics_file_path, buffer.getvalue().encode())
        self.metrics_keys = sorted(header)  # appended rows then share the header already written


class ResumableCSVLogger(CSVLogger):
    """A `CSVLogger` whose `keep_rows_before` (set before `fit`) is the resumed checkpoint's step."""

    keep_rows_before: int = 0

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _KeepingWriter(self.log_dir, self.keep_rows_before)
        return self._experiment


class FlushLogsOnCheckpoint(pl.Callback):
    """Writes the loggers' buffered rows before a checkpoint is saved (Lightning otherwise flushes
    every 100 steps, and a kill would lose the rows between the last flush and the checkpoint)."""

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        for logger in trainer.loggers:
            logger.save()
