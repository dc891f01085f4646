"""`metrics.csv` that survives a resume: one row per logged step over the whole run, once.

Lightning's CSV logger deletes `metrics.csv` when it starts, so a run resumed from `last.ckpt`
would keep only the rows logged after the resume. Here the rows logged before the checkpoint are
kept, and the rows of steps the killed process logged after it (which the resumed run replays)
are dropped, so the file reads as if the run had never stopped.
"""

from __future__ import annotations

import csv
import io
import os

from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from bench.record import write_bytes_atomic


def rows_before(path: str, step: int) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows of the CSV at `path` whose `step` is below `step` (none if absent)."""
    if step <= 0 or not os.path.isfile(path):
        return [], []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [row for row in reader if row.get("step", "").isdigit() and int(row["step"]) < step]
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
