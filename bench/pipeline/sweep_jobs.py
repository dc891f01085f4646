"""Sweep bookkeeping: which jobs of a `bench-train -m` sweep did not complete.

Jobs may run in worker processes (joblib, submitit), so they append their names to a file the
parent names in an environment variable; `bench-train` reads it back and exits non-zero.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


#: Environment variable naming the file where sweep jobs that did not complete are listed, so
#: `bench-train -m` can exit non-zero whichever launcher (in-process or worker processes) ran them.
INCOMPLETE_JOBS_ENV = "BENCH_INCOMPLETE_JOBS"


def note_incomplete_job(name: str) -> None:
    """Add `name` to the jobs `bench-train -m` lists as not completed (also called by bench's sweeper)."""
    path = os.environ.get(INCOMPLETE_JOBS_ENV)
    if path:
        with open(path, "a") as fh:  # one short line per job: appends do not interleave
            fh.write(name + "\n")
