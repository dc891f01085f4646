"""`bench-train`: the `@hydra.main` entry point around `bench.pipeline.train_task.train`.

The command line is checked first (`check_command_line`), so that a name no config has, a key Hydra
needs deleted or a results_dir that cannot hold runs is one line instead of Hydra's traceback.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from typing import TYPE_CHECKING

import hydra
from hydra._internal.utils import get_args_parser  # Hydra's own command-line parser (no public name)
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from bench.config.choices import CONF_DIR, check_group_choices
from bench.config.compose import compose_with_hydra, job_overrides
from bench.config.run_folder import create_output_folder
from bench.core.errors import BenchError
from bench.pipeline.sweep_jobs import INCOMPLETE_JOBS_ENV, note_incomplete_job
from bench.run.launch import plan_launch

if TYPE_CHECKING:
    import argparse


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def hydra_main(cfg: DictConfig) -> float | None:
    """One job; under `validate_only` (a tuning trial) it returns the trial's objective to the sweeper."""
    # torch and Lightning load only once a run starts: --help, --cfg and a mistake answer in a second
    from bench.pipeline.train_task import record_failed_job, train  # noqa: PLC0415  (heavy, cold path)

    single = _single_run()
    try:
        record = train(cfg)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        if single:
            sys.exit(2)
        # in a sweep the other jobs go on, and the report lists this one with its message
        record = record_failed_job(cfg, str(err))
    if record is None and _other_rank(cfg):
        return None  # a rank other than 0 of a SLURM/torchrun launch: rank 0 reports the run
    done = "validated" if cfg.get("validate_only") else "completed"
    if record is not None and record["status"] != done and single:
        sys.exit(1)
    if not single and (record is None or record["status"] != done):
        note_incomplete_job(record["run_id"] if record else "a job (no record written)")
    return trial_objective(record) if cfg.get("validate_only") else None


def trial_objective(record: dict | None) -> float:
    """A tuning trial's objective: its best validation sample-quality statistic; +inf for a trial
    that failed, diverged or never validated, so the search moves away from it."""
    at = ((record or {}).get("checkpoint") or {}).get("selected_at") or {}
    value = at.get("value")
    if (record or {}).get("status") != "validated" or value is None:
        return math.inf
    return float(value)


def _other_rank(cfg: DictConfig) -> bool:
    try:
        return plan_launch(cfg.trainer).rank != 0
    except Exception:
        return False


def _single_run() -> bool:
    return HydraConfig.get().mode == RunMode.RUN


def check_command_line(args: argparse.Namespace) -> None:
    """One `BenchError` line for what Hydra would answer with a traceback: a name no config has,
    a key Hydra needs deleted, overrides that do not compose, a results_dir that cannot hold runs."""
    if args.experimental_rerun or args.config_path or args.config_name or args.config_dir:
        return  # not bench/conf's config (or a pickled one): Hydra checks it
    check_group_choices(args.overrides)
    if args.multirun:
        base, _ = job_overrides(args.overrides)  # the overrides every job shares must compose: else no job could run
    if args.help or args.hydra_help or args.cfg or args.info or args.shell_completion:
        return  # Hydra shows something and runs nothing
    if not args.multirun:
        base = compose_with_hydra(args.overrides)
    create_output_folder(base, multirun=args.multirun)


def main() -> None:
    args = get_args_parser().parse_args()  # Hydra's own parser: flags and their values as Hydra reads them
    try:
        check_command_line(args)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    with tempfile.NamedTemporaryFile("r", prefix="bench-incomplete-", suffix=".txt") as incomplete:
        os.environ[INCOMPLETE_JOBS_ENV] = incomplete.name
        try:
            hydra_main()
        finally:
            os.environ.pop(INCOMPLETE_JOBS_ENV, None)
        names = [line for line in incomplete.read().splitlines() if line]
    if names:
        print(f"bench-train: {len(names)} job(s) did not complete: {', '.join(names)}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":  # `python -m bench.cli.train`: run the imported module's copy, so that launchers
    from bench.cli.train import main as _main  # that pickle the task (submitit) refer to it by name

    _main()
