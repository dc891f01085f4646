"""`bench-time RUNS...`: measure sampling speed one run at a time, with nothing else of the sweep running.

In a parallel sweep a job's sampling would be timed while other jobs train on the same cores,
so such jobs record their speed as deferred (`timing.measurement.pass`) and the sweep ends with
this pass (`hydra_plugins.bench_sweeper`), which loads each run's selected checkpoint in turn
and times it exactly as a job would (`timed_sample`: warm-up, median of repeats) at the run's
thread count. `bench-time` does the same by hand, e.g. after an interrupted sweep; `--all`
times completed runs again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from bench.config.run_folder import run_directory
from bench.core.errors import BenchError
from bench.core.records import read_record, write_record
from bench.evaluate.cost.timing import DEFERRED, timed_sample
from bench.evaluate.image_files import SAMPLES_NAME, load_samples
from bench.models.base import labels_for
from bench.models.baselines import fit_on
from bench.pipeline.saved_run import SavedRun, read_saved_run

PASS = "sequential pass after the sweep"


def is_pending(record: dict | None) -> bool:
    timing = (record or {}).get("timing") or {}
    return (record or {}).get("status") == "completed" and (timing.get("measurement") or {}).get("pass") == DEFERRED


def time_run(run: SavedRun) -> dict:
    """Time the sampling of a checked run (`bench.pipeline.saved_run`) and return its record with the speed filled in."""
    record = run.record
    datamodule = run.datamodule()
    if (record.get("budget") or {}).get("stopped_by") == "closed_form":
        module = _refit(run, datamodule)
    else:
        module = run.module(datamodule.spec)
    if (record.get("environment") or {}).get("device", "cpu").startswith("cuda") and torch.cuda.is_available():
        module = module.to("cuda")
    protocol = record.get("protocol") or {}
    n = int(protocol.get("n_generated") or (record["timing"].get("measurement") or {}).get("scored_images"))
    labels = labels_for(n, module.num_classes) if getattr(module, "conditional", False) else None
    samples, speed = timed_sample(module, n, int(protocol.get("scoring_seed") or 0), labels=labels)
    speed["measurement"].update(
        {
            "pass": PASS,
            "threads": torch.get_num_threads(),
            "reproduces_scored_samples": _same_as_saved(run.folder, samples, datamodule.spec),
        }
    )
    record["timing"] = {**record["timing"], **speed}
    return record


def _refit(run: SavedRun, datamodule):
    """A closed-form baseline keeps no checkpoint: fitting it again gives the same model."""
    module = run.build(datamodule.spec)
    fit_on(module, datamodule)
    return module


def _same_as_saved(run_dir: Path, samples: torch.Tensor, spec) -> bool | None:
    """Whether the timed pass drew the scored samples again (None where none were saved)."""
    path = run_dir / SAMPLES_NAME
    return bool(torch.equal(load_samples(path, spec), samples)) if path.is_file() else None


def time_runs(
    run_dirs: list[Path],
    threads: int = 1,
    everything: bool = False,
    say: Callable[[str], None] = print,
    root: str | None = None,
    trusted_networks: frozenset[str] | set[str] = frozenset(),
) -> list[str]:
    """Time each pending (with `everything`: each completed) run in turn; returns the names of those
    that failed or were refused (each with an `error:` line; the others are still timed)."""
    torch.set_num_threads(threads)
    failed = []
    for run_dir in run_dirs:
        record = read_record(run_dir)
        if not (is_pending(record) or (everything and (record or {}).get("status") == "completed")):
            continue
        try:
            record = time_run(read_saved_run(run_dir, root=root, trusted_networks=trusted_networks))
        except BenchError as err:
            failed.append(run_dir.name)
            say(f"error: timing {run_dir.name}: {err}")
            continue
        write_record(run_dir, record)
        say(f"timed {run_dir.name}: {record['timing']['sample_images_per_s']:.1f} images/s")
    return failed


def time_sweep_jobs(job_configs: list[DictConfig], threads: int) -> list[str]:
    """The sweep's timing pass: time the deferred runs of the sweep's own jobs, each found in the
    folder its config names. A folder no job of this sweep names is never read (it may have been
    planted); the networks the jobs' configs name are trusted, as the user composed them."""
    folders: dict[Path, None] = {}
    networks: set[str] = set()
    for cfg in job_configs:
        folders[run_directory(cfg)] = None
        target = OmegaConf.select(cfg, "model.net._target_", default=None)
        if target is not None:
            networks.add(str(target))
    pending = [folder for folder in folders if is_pending(read_record(folder))]
    if not pending:
        return []
    say = functools.partial(print, flush=True)
    say(f"timing pass: sampling speed of {len(pending)} run(s), one at a time")
    return time_runs(pending, threads=threads, say=say, trusted_networks=networks)
