"""Keep reference classifiers trained during tests out of the user's cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def private_cache(folder: Path) -> Iterator[Path]:
    """Point `BENCH_CACHE` at `folder` while the block runs, then restore it."""
    old = os.environ.get("BENCH_CACHE")
    os.environ["BENCH_CACHE"] = str(folder)
    try:
        yield folder
    finally:
        if old is None:
            os.environ.pop("BENCH_CACHE", None)
        else:
            os.environ["BENCH_CACHE"] = old
