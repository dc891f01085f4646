"""`bench-tune model=<name> [trials=20] [overrides...]`: an equal, recorded tuning budget per model.

Runs `bench-train -m experiment=tune +tune=<family>` in a subprocess: Hydra's Optuna sweeper
searches the space in `tune/<family>.yaml` (bench/conf, a plugin's or the user's conf/) for
`trials` trials, each trained within the budget on the training split and scored on the
validation split only (`validate_only`; the test split is never read). Then it writes the
tuning record (`tuning.json` in the sweep folder) and the best trial as a model config,
`conf/model/<model>_tuned_<dataset>.yaml` in the working directory, usable as
`model=<model>_tuned_<dataset>`. Re-running the command resumes: finished trials are skipped.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.cli.compare import TRAIN_CODE
from bench.config.choices import USER_CONF, check_group_choices, config_roots, group_choices
from bench.config.compose import compose_with_hydra
from bench.config.run_folder import create_output_folder
from bench.core.errors import BenchError, exit_on_user_error
from bench.pipeline.tuning import search_space, trials, tuning_record, write_tuned

DEFAULT_TRIALS = 20
#: Hydra's Optuna sweeper, minimising the trials' objective; TPE seeded with the run seed. Two
#: trials at a time (the `local_parallel` launcher's width), like the comparison.
SWEEPER = [
    "hydra/sweeper=optuna",
    "hydra.sweeper.direction=minimize",
    "hydra.sweeper.study_name=${sweep}",
    "hydra.sweeper.n_jobs=${hydra.launcher.n_jobs}",
    "hydra.sweeper.sampler.seed=${seed}",
]


def split_arguments(argv: list[str]) -> tuple[list[str], int]:
    """The Hydra overrides and the number of trials (`trials=N`) in `argv`."""
    overrides, n = [], DEFAULT_TRIALS
    for arg in argv:
        if arg in ("-m", "--multirun"):
            continue
        if arg.startswith("trials="):
            value = arg.partition("=")[2]
            if not value.isdigit() or int(value) < 1:
                raise BenchError(f"trials={value!r}: expected a positive integer (the number of trials)")
            n = int(value)
        else:
            overrides.append(arg)
    if not any(o.startswith("model=") for o in overrides):
        raise BenchError("model: expected model=<name> (the model config whose family's space is searched)")
    return overrides, n


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    overrides, n_trials = split_arguments(list(sys.argv[1:] if argv is None else argv))
    model_choice = next(o.partition("=")[2] for o in overrides if o.startswith("model="))
    if "," in model_choice:
        raise BenchError(f"model={model_choice}: bench-tune searches one model at a time")
    overrides = ["experiment=tune", *SWEEPER, *overrides, f"hydra.sweeper.n_trials={n_trials}"]
    check_group_choices(overrides)
    family = str(compose_with_hydra(overrides).model.family)
    if not _has_space(overrides, family):
        raise BenchError(f"tune/{family}.yaml: no tuning space for family {family!r} (bench/conf/tune or conf/tune)")
    overrides.insert(1, f"+tune={family}")
    base = compose_with_hydra(overrides)
    space = search_space(base)
    create_output_folder(base, multirun=True)
    sweep_dir = Path(base.results_dir) / str(base.sweep)
    print(f"bench-tune: {n_trials} trial(s) of {base.model.name} on {base.dataset.name} -> {sweep_dir}", flush=True)
    returncode = subprocess.call([sys.executable, "-c", TRAIN_CODE, "-m", *overrides])
    if returncode != 0:
        print(f"bench-tune: the sweep stopped with exit status {returncode}", file=sys.stderr, flush=True)
    record = tuning_record(base, space, trials(sweep_dir, base, space), n_trials)
    taken = group_choices("model", config_roots(overrides))
    path = write_tuned(Path.cwd() / USER_CONF, base, record, model_choice, sweep_dir, taken)
    best = record["best"]
    print(
        f"bench-tune: best of {len(record['trials'])} trial(s): {record['statistic']} {best['value']:.4g} "
        f"({', '.join(f'{k}={v}' for k, v in best['params'].items())})\n"
        f"wrote {path} (model={path.stem}) and {sweep_dir / 'tuning.json'}",
        flush=True,
    )
    return returncode


def _has_space(overrides: list[str], family: str) -> bool:
    return family in group_choices("tune", config_roots(overrides))


if __name__ == "__main__":
    sys.exit(main())
