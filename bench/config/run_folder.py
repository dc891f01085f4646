"""Where a run lands: a folder derived from its config (never the clock), and its lock.

Every key of the composed config is hashed unless `UNHASHED_KEYS` names it with the reason it
cannot change a result, so the same experiment always lands in the same folder, a re-run finds
its record, and a new key changes the hash until someone decides otherwise. `hydra.*` is
Hydra's own node, never part of the config a run receives.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bench.core.errors import BenchError

#: Keys that cannot change a result, each with the reason. An entry names a key or a whole
#: section; every other key is hashed. `dataset.root` is hashed: for `dataset=folder` it says which
#: images are used (for the torchvision sources, moving the files gives a new folder).
UNHASHED_KEYS: dict[str, str] = {
    "results_dir": "where run folders are created, not what runs in them",
    "sweep": "the folder under results_dir that groups runs",
    "progress": "how training progress is shown on the terminal",
    "logger": "where training curves are logged (csv, wandb, none); the record is the same",
    "trainer.log_every_n_steps": "how often training curves are logged, not what is learned",
    "dataset.download": "whether missing files may be fetched; the images used are the same",
    "dataset.cache_dir": "where decoded images are cached, keyed by the files' fingerprint",
    "model.tuning": "how a tuned model config was found (bench-tune), not what it trains",
    "claims": "what the report tests about the runs, not what they train",
    "claim_margin": "the report's equivalence margins, not what a run trains",
    "decide": "whether bench-compare adds seeds; each run is the same",
    "max_seeds": "how many seeds bench-compare may add; each run is the same",
}


def hashed_config(cfg: DictConfig) -> dict:
    """The part of the config that the hash covers: all of it but `UNHASHED_KEYS`."""
    data = OmegaConf.to_container(cfg, resolve=True)
    if not data.get("callbacks", True):  # no extra callbacks: the hash of every run before the section existed
        data.pop("callbacks")
    for key in UNHASHED_KEYS:
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return data


def config_hash(cfg: DictConfig) -> str:
    blob = json.dumps(hashed_config(cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def run_name(cfg: DictConfig) -> str:
    readable = f"{cfg.model.name}-{cfg.dataset.name}-seed{cfg.seed}"
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', readable)}__{config_hash(cfg)}"


def run_directory(cfg: DictConfig) -> Path:
    return Path(cfg.results_dir) / str(cfg.sweep) / run_name(cfg)


def create_output_folder(base: DictConfig, multirun: bool) -> None:
    """Create the folder Hydra is about to write to (`hydra.sweep.dir` or `hydra.run.dir` of `base`,
    a config composed with Hydra's node), so that a results_dir that cannot hold runs (a regular
    file in its path, a read-only disk) is one line naming it instead of Hydra's traceback."""
    for name, expected in (("results_dir", "a folder path"), ("sweep", "a folder name")):
        if OmegaConf.select(base, name, default=None) in (None, ""):  # else Hydra would create a folder `None`
            raise BenchError(f"{name}={OmegaConf.select(base, name, default=None)!r}: expected {expected}")
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        folder = Path(str(OmegaConf.select(base, key, throw_on_missing=True)))
    except Exception:  # e.g. `${hydra:job.name}`, which only Hydra's own run resolves: Hydra reports it
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        results_dir = Path(str(base.get("results_dir")))
        named = f"results_dir={results_dir}" if results_dir in (folder, *folder.parents) else f"{key}={folder}"
        raise BenchError(f"{named}: cannot create {folder} ({err.strerror or err})") from None
