"""`bench-compare [overrides...]`: run the comparison sweep, write its report, say what failed.

The sweep is `bench-train -m experiment=compare ...` in a subprocess (Hydra's joblib launcher,
2 jobs x 1 thread by default). Completed runs are skipped by the training code, so re-running
the command resumes a sweep. `budget=smoke` selects `experiment=compare_smoke` (one seed).
The exit status is 0 only when every job of the sweep has a completed record. The preset's
claims (`claims`, `claim_margin`) go to `<sweep>/claims.json` for the report; with `decide=true`
the command then adds seeds, one round at a time, to the models of claims the group-sequential
design (`bench.report.sequential`) has not decided, up to `max_seeds` per model.
Hydra's `--cfg`, `--package`, `--resolve`, `--info`, `--help`, `--hydra-help` and
`--shell-completion` show what a job of the sweep would compose, and run nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra._internal.utils import get_args_parser  # Hydra's own command-line parser (no public name)
from omegaconf import DictConfig

from bench.cli.train import hydra_main
from bench.config.choices import check_group_choices
from bench.config.claims import settings_of_config, write_settings
from bench.config.compose import compose_all, job_overrides
from bench.config.run_folder import create_output_folder, run_directory
from bench.core.errors import BenchError, exit_on_user_error
from bench.core.records import read_record

# Every job's config is composed before the sweep starts (a bad choice stops it with one line),
# and the sweep calls Hydra's entry point directly.
TRAIN_CODE = "import sys; sys.argv[0] = 'bench-train'; from bench.cli.train import hydra_main; hydra_main()"
MULTIRUN_FLAGS = ("-m", "--multirun")


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def with_defaults(overrides: list[str]) -> list[str]:
    """The user's overrides plus the experiment preset (smoke budget -> the one-seed preset)."""
    overrides = [o for o in overrides if o not in MULTIRUN_FLAGS]
    keys = {_key(o) for o in overrides}
    if "experiment" not in keys:
        preset = "compare_smoke" if "budget=smoke" in overrides else "compare"
        overrides = [f"experiment={preset}", *overrides]
    return overrides


def concurrency(base: DictConfig, overrides: list[str]) -> list[str]:
    """`concurrent_jobs=N` matching the launcher's width, unless the user set it."""
    if "concurrent_jobs" in {_key(o) for o in overrides}:
        return []
    n_jobs = base.hydra.launcher.get("n_jobs", 1)
    if n_jobs is None or n_jobs < 0:
        n_jobs = os.cpu_count() or 1
    return [f"concurrent_jobs={n_jobs}"]


def run_folders(jobs: list[list[str]]) -> list[Path]:
    """The run folder of every job (derived from its config, as the training code does)."""
    return [run_directory(cfg) for cfg in compose_all(jobs)]


#: Hydra's flags that show something and run nothing, with how `bench-train` spells them.
SHOW_FLAGS = {
    "help": "--help",
    "hydra_help": "--hydra-help",
    "cfg": "--cfg",
    "package": "--package",
    "resolve": "--resolve",
    "info": "--info",
    "shell_completion": "--shell-completion",
}
#: Hydra's flags that choose another config or run mode than the comparison's.
OTHER_FLAGS = {
    "run": "--run",
    "config_path": "--config-path",
    "config_name": "--config-name",
    "config_dir": "--config-dir",
    "experimental_rerun": "--experimental-rerun",
}


def command_line(argv: list[str]):
    """`argv` read by Hydra's own parser (flags and their values, then the overrides)."""
    args = get_args_parser().parse_args(argv)
    for dest, flag in OTHER_FLAGS.items():
        if getattr(args, dest):
            raise BenchError(
                f"{flag}: not supported by bench-compare, which runs the comparison of bench/conf; "
                "use bench-train -m for other configs or run modes"
            )
    return args


def show(args, overrides: list[str]) -> int:
    """What Hydra's show flags print for a job of the sweep: `bench-train FLAGS OVERRIDES`, run nothing."""
    flags = []
    for dest, flag in SHOW_FLAGS.items():
        value = getattr(args, dest)
        flags += [] if value in (None, False) else [flag] if value is True else [flag, str(value)]
    if args.help:
        print(__doc__.strip().splitlines()[0] + "\nEach job is a bench-train run; its help follows.\n", flush=True)
    sys.argv = ["bench-train", *flags, *overrides]
    hydra_main()
    return 0


def run_sweep(overrides: list[str]) -> int:
    """`bench-train -m OVERRIDES` in a subprocess; its exit status (130: interrupted)."""
    sweep = subprocess.Popen([sys.executable, "-c", TRAIN_CODE, "-m", *overrides])
    try:
        return sweep.wait()
    except KeyboardInterrupt:  # the jobs got the signal too and record themselves as interrupted
        sweep.wait()
        return 130


def first_seeds(jobs: list[list[str]]) -> int:
    """Seeds per model in the preset's sweep: the first look of `decide`."""
    seeds = {o.split("=", 1)[1] for job in jobs for o in job if _key(o) == "seed"}
    return max(len(seeds), 1)


def _next_seed(runs) -> int:
    taken = {r.seed for r in runs}
    return next(s for s in range(len(taken) + 1) if s not in taken)


def decide_rounds(overrides: list[str], folders: list[Path], sweep_dir: Path, settings) -> tuple[int, list[Path]]:
    """Add a seed to every model of a still undecided claim (`bench.report.claims.open_models`),
    round after round, until none is open; returns the last sweep's exit status and the new runs'
    folders. The decisions are replayed from the records each round, so an interrupted loop resumes."""
    from bench.report.claims import open_models  # noqa: PLC0415  (statistics: only under decide=true)
    from bench.report.collect import collect, group_key  # noqa: PLC0415

    returncode, added = 0, []
    mine = {group_key(r) for f in folders if (r := read_record(f)) and r.get("status") == "completed"}
    while True:
        found = collect(sweep_dir)
        groups = {key: runs for key, runs in found.groups.items() if key in mine}
        by_seed: dict[int, list[str]] = {}
        for key, models in open_models(groups, settings).items():
            for model in sorted(models):
                seed = _next_seed([r for r in groups[key] if r.model == model])
                by_seed.setdefault(seed, []).append(model)
        if not by_seed:
            return returncode, added
        completed = sum(len(runs) for runs in groups.values())
        for seed, models in sorted(by_seed.items()):
            extra = [f"model={','.join(models)}", f"seed={seed}"]
            print(f"bench-compare: decide: seed {seed} for {', '.join(models)}", flush=True)
            round_jobs = job_overrides([*overrides, *extra])[1]
            added += run_folders(round_jobs)
            returncode = run_sweep([*overrides, *extra])
            if returncode == 130:
                return returncode, added
        found = collect(sweep_dir)
        if sum(len(runs) for key, runs in found.groups.items() if key in mine) == completed:
            print("bench-compare: decide: a round completed no run; stopping", file=sys.stderr, flush=True)
            return returncode or 1, added


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = command_line(list(sys.argv[1:] if argv is None else argv))
    overrides = with_defaults(args.overrides)
    check_group_choices(overrides)  # the same names, and the same message, as bench-train
    if any(getattr(args, dest) not in (None, False) for dest in SHOW_FLAGS):
        return show(args, overrides)
    base, _ = job_overrides(overrides)
    overrides += concurrency(base, overrides)
    base, jobs = job_overrides(overrides)
    settings = settings_of_config(base, first=first_seeds(jobs))
    folders = run_folders(jobs)
    create_output_folder(base, multirun=True)
    sweep_dir = Path(base.results_dir) / str(base.sweep)
    write_settings(sweep_dir, settings)  # what bench-report tests for this folder
    print(f"bench-compare: {len(jobs)} job(s) -> {sweep_dir}", flush=True)
    returncode = run_sweep(overrides)
    if returncode == 0 and settings.decide and settings.claims:
        returncode, added = decide_rounds(overrides, folders, sweep_dir, settings)
        folders += added
    if returncode == 130:
        print("bench-compare: interrupted; run the same command again to resume", file=sys.stderr, flush=True)
        return 130
    if returncode != 0:
        print(f"bench-compare: the sweep stopped with exit status {returncode}", file=sys.stderr, flush=True)
    if not sweep_dir.is_dir():
        return returncode or 1
    from bench.report.render import build_report  # noqa: PLC0415  (matplotlib, heavy: only once there is something to plot)

    files = build_report(sweep_dir, settings=settings)
    print(f"report: {files.html} (Markdown: {files.markdown})", flush=True)
    problems = []
    for folder in dict.fromkeys(folders):
        record = read_record(folder)
        status = record.get("status") if record else "missing"
        if status != "completed":
            message = (record or {}).get("message") or "no record written"
            problems.append(f"{folder.name}: {status}: {message}")
    for line in problems:
        print(f"not completed: {line}", flush=True)
    total = len(dict.fromkeys(folders))
    print(f"bench-compare: {total - len(problems)} of {total} job(s) completed", flush=True)
    return returncode or (1 if problems else 0)


if __name__ == "__main__":
    raise SystemExit(main())
