"""Where a run lands: a folder derived from its config (never the clock), and its lock.

The config hash covers what changes results (model, data, budget, seed, threads, trainer
numerics, protocol) and leaves out paths, loggers and progress settings, so the same experiment
always lands in the same folder and a re-run finds its record.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

HASHED_KEYS = ("model", "dataset", "budget", "seed", "threads", "trainer", "protocol")
#: Trainer keys that change how often things are logged, not what is learned.
_UNHASHED_TRAINER_KEYS = ("log_every_n_steps",)
#: Dataset keys that say where files are fetched from or cached, not which images are used.
_UNHASHED_DATASET_KEYS = ("download", "cache_dir")


def hashed_config(cfg: DictConfig) -> dict:
    """The part of the config that the hash covers."""
    data = OmegaConf.to_container(cfg, resolve=True)
    picked = {k: data[k] for k in HASHED_KEYS if k in data}
    if isinstance(picked.get("trainer"), dict):
        picked["trainer"] = {k: v for k, v in picked["trainer"].items() if k not in _UNHASHED_TRAINER_KEYS}
    if isinstance(picked.get("dataset"), dict):
        picked["dataset"] = {k: v for k, v in picked["dataset"].items() if k not in _UNHASHED_DATASET_KEYS}
    return picked


def config_hash(cfg: DictConfig) -> str:
    blob = json.dumps(hashed_config(cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def run_name(cfg: DictConfig) -> str:
    readable = f"{cfg.model.name}-{cfg.dataset.name}-seed{cfg.seed}"
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', readable)}__{config_hash(cfg)}"


def run_directory(cfg: DictConfig) -> Path:
    return Path(cfg.results_dir) / str(cfg.sweep) / run_name(cfg)


class RunLock:
    """An exclusive, non-blocking lock on a run folder (released when the process dies).

    `acquire()` returns False when another process holds the lock.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
