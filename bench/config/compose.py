"""The one place configs are composed: every entry point asks here for what `bench-train` would compose.

`bench-train` and `bench-compare` compose with Hydra (`compose_with_hydra`, `job_overrides`);
`bench-eval` and `bench-rescore` take a protocol file or a dataset choice through the same Hydra
composition of `bench/conf`, so a preset that extends another reads the same everywhere.
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.errors import MissingConfigException
from omegaconf import DictConfig, OmegaConf

from bench.config.choices import CONF_DIR, parse_overrides
from bench.config.protocol import Protocol
from bench.core.errors import BenchError


def compose_with_hydra(overrides: list[str]) -> DictConfig:
    """One run's config with Hydra's node (`hydra.run.dir`, ...), composed as `bench-train` would."""
    (cfg,) = compose_all([overrides], hydra_node=True)
    return cfg


def compose_all(jobs: list[list[str]], hydra_node: bool = False) -> list[DictConfig]:
    """Each override list composed as `bench-train` would; a missing choice is one clear line."""
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return [compose("config", overrides=job, return_hydra_config=hydra_node) for job in jobs]
    except MissingConfigException as err:
        group, _, choice = str(err.missing_cfg_file).rpartition("/")
        raise BenchError(f"{group}={choice!r}: expected one of {', '.join(err.options or [])}") from None
    except Exception as err:  # Hydra's composition errors: keep their first line
        raise BenchError(f"the config does not compose: {str(err).splitlines()[0]}") from None


def job_overrides(overrides: list[str]) -> tuple[DictConfig, list[list[str]]]:
    """The sweep's base config and each job's overrides, expanded as Hydra's basic sweeper does
    (the preset's `hydra.sweeper.params` first, command-line values winning)."""
    fixed = [o.input_line for o in parse_overrides(overrides) if not o.is_sweep_override()]
    (base,) = compose_all([fixed], hydra_node=True)
    preset = base.hydra.sweeper.get("params")
    params = OmegaConf.to_container(preset, resolve=False) if preset else {}
    combined = [f"{k}={v}" for k, v in params.items()] + overrides
    (jobs,) = BasicSweeper.split_arguments(parse_overrides(combined), None)
    return base, jobs


def compose_choice(group: str, choice: str | None = None) -> DictConfig:
    """Section `group` of the config `bench-train` composes with `group=choice` (bench's default
    choice where None), found in bench/conf, the plugins' config packages and the user's conf/."""
    (cfg,) = compose_all([[f"{group}={choice}"] if choice else []])
    return cfg[group]


def load_protocol(path: str | None) -> Protocol:
    """The protocol in the YAML file `path`, else bench/conf's default protocol."""
    if not path:
        return Protocol.from_config(compose_choice("protocol"))
    file = Path(path)
    if not file.is_file():
        raise BenchError(f"--protocol {file}: expected a protocol YAML file")
    return Protocol.from_config(OmegaConf.load(file))


def dataset_config(name: str | None) -> dict:
    """The keyword arguments of `ImageDataModule` for dataset config `name` (None: the default
    dataset), as a run composes them."""
    return OmegaConf.to_container(compose_choice("dataset", name), resolve=True)
