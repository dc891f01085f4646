"""What a tuning sweep leaves behind: its trials read back, the tuning record, the tuned model config.

`bench-tune` (`bench.cli.tune`) runs the trials through Hydra's Optuna sweeper; each trial is a run
folder with a `validated` record (`validate_only`: the test split is never read). This module reads
those records, picks the trial with the lowest objective (the sample-quality selection statistic
at its best validation, `bench.cli.train.trial_objective`), and writes:

- `tuning.json` in the sweep folder: the space, the budget, the seed, and every trial's parameters,
  status and validation metric;
- `<conf>/model/<model>_tuned_<dataset>.yaml`: the base model config composed with the best trial's
  parameters, under its own name, with a `tuning` block (trials, budget, statistic, seed) that the
  report shows beside the model's row. `tuning` is not hashed (`bench.config.run_folder`).

The tuned config is composed from bench's own config files and the values the sweep chose (numbers
and names from the space), never copied from a record's config.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bench.config.compose import compose_with_hydra
from bench.core.atomic import write_bytes_atomic, write_json_atomic
from bench.core.errors import BenchError
from bench.core.records import read_record, record_files

TUNING_RECORD = "tuning.json"
#: a string a trial's parameter may hold: no interpolation, no sweep, no override grammar
_PLAIN = re.compile(r"[A-Za-z0-9_.+-]+")


def search_space(base: DictConfig) -> dict[str, str]:
    """Override key -> its search expression, as the composed sweep declares it (`hydra.sweeper.params`)."""
    params = base.hydra.sweeper.get("params") or {}
    space = {str(k): str(v) for k, v in OmegaConf.to_container(params, resolve=False).items()}
    if not space:
        raise BenchError(
            f"tune/{base.model.family}.yaml: expected hydra.sweeper.params with at least one key to search"
        )
    return space


def trials(sweep_dir: Path, base: DictConfig, space: dict[str, str]) -> list[dict]:
    """Every trial of this model, dataset and budget in `sweep_dir`: run id, parameters, status, value."""
    found = []
    for path in record_files(sweep_dir):
        record = read_record(path)
        config = (record or {}).get("config") or {}
        if not record or not config.get("validate_only") or record.get("model") != base.model.name:
            continue
        if config.get("budget") != OmegaConf.to_container(base.budget, resolve=True):
            continue  # a trial of another budget: not part of this search
        at = (record.get("checkpoint") or {}).get("selected_at") or {}
        value = at.get("value") if record.get("status") == "validated" else None
        found.append(
            {
                "run_id": record.get("run_id"),
                "params": {key: _scalar(_raw(config, key)) for key in space},
                "status": record.get("status"),
                "value": float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None,
                "selected_at": {k: at.get(k) for k in ("step", "samples_seen", "train_seconds")},
            }
        )
    return sorted(found, key=lambda t: str(t["run_id"]))


def best_trial(found: list[dict]) -> dict:
    scored = [t for t in found if t["value"] is not None]
    if not scored:
        raise BenchError(
            "bench-tune: no trial completed a validation; nothing to choose from (see the trials' records)"
        )
    return min(scored, key=lambda t: t["value"])


def tuning_record(base: DictConfig, space: dict[str, str], found: list[dict], requested: int) -> dict:
    """The tuning record: what was searched, how, at which budget, and how each trial did."""
    best = best_trial(found)
    return {
        "model": str(base.model.name),
        "family": str(base.model.family),
        "dataset": str(base.dataset.name),
        "statistic": f"val/{base.protocol.selection_statistic}",
        "selection_n": int(base.protocol.selection_n),
        "budget": OmegaConf.to_container(base.budget, resolve=True),
        "seed": int(base.seed),
        "sampler": str(base.hydra.sweeper.sampler.get("_target_", "")),
        "space": space,
        "trials_requested": int(requested),
        "trials": found,
        "best": best,
    }


def tuned_name(base: DictConfig, taken: dict[str, Path] | None = None, conf_dir: Path | None = None) -> str:
    """`<model>_tuned_<dataset>`, or with `_2`, `_3`, ... where a config folder searched before
    `conf_dir` already holds that name (bench's own tuned configs): it would shadow the new file."""
    name, n = f"{base.model.name}_tuned_{base.dataset.name}", 1
    taken = taken or {}
    while (found := taken.get(name if n == 1 else f"{name}_{n}")) is not None and (
        conf_dir is None or found.parent.resolve() != (conf_dir / "model").resolve()
    ):
        n += 1
    return name if n == 1 else f"{name}_{n}"


def tuned_model_config(base: DictConfig, record: dict, model_choice: str, name: str | None = None) -> dict:
    """The model config of the best trial: `model=<model_choice>` with its parameters, renamed, with
    a `tuning` summary."""
    params = {key: value for key, value in record["best"]["params"].items() if value is not None}
    for key, value in params.items():  # read from a record: plain values only
        if not isinstance(value, (bool, int, float)) and not (isinstance(value, str) and _PLAIN.fullmatch(value)):
            raise BenchError(f"{record['best']['run_id']}: config {key}={value!r}: expected a number or a plain name")
    overrides = [f"model={model_choice}", *(f"{key}={value}" for key, value in params.items())]
    model = OmegaConf.to_container(compose_with_hydra(overrides).model, resolve=False)
    model["name"] = name or tuned_name(base)
    model["tuning"] = {
        "tuned_from": model_choice,
        "dataset": record["dataset"],
        "trials": sum(t["value"] is not None for t in record["trials"]),
        "budget": record["budget"],
        "statistic": record["statistic"],
        "best_value": record["best"]["value"],
        "seed": record["seed"],
    }
    return model


def write_tuned(
    conf_dir: Path,
    base: DictConfig,
    record: dict,
    model_choice: str,
    sweep_dir: Path,
    taken: dict[str, Path] | None = None,
) -> Path:
    """Write `tuning.json` into `sweep_dir` and the tuned model config into `conf_dir/model/`; its
    path. `taken`: model names the config folders already hold (name -> file), never shadowed."""
    write_json_atomic(sweep_dir / TUNING_RECORD, record)
    model = tuned_model_config(base, record, model_choice, tuned_name(base, taken, conf_dir))
    path = conf_dir / "model" / f"{model['name']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# Found by `bench-tune model={model_choice}` on {record['dataset']}: the best of "
        f"{model['tuning']['trials']} trials by {record['statistic']} at a {record['budget']['kind']} budget of "
        f"{record['budget']['value']:g} each (tuning record: {sweep_dir / TUNING_RECORD}).\n"
    )
    write_bytes_atomic(path, (header + OmegaConf.to_yaml(OmegaConf.create(model), sort_keys=False)).encode())
    return path


def _raw(config: dict, key: str):
    """The value at dotted `key` of a record's config, as written: never resolved (a record is data)."""
    node = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _scalar(value):
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)
