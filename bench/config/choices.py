"""Which config names exist: bench's own config folder, each installed plugin's config package,
the user's `conf/` folders and `hydra.searchpath` folders, in Hydra's order; one-line errors for
names that do not.

`bench-train` and `bench-compare` check their arguments here before Hydra composes anything, so
both accept the same names and say the same thing about the others.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from omegaconf import OmegaConf

from bench.config.plugins import available, config_packages, package_folder
from bench.core.errors import BenchError

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
#: The folder of a user's own config groups (`conf/model/*.yaml`, `conf/experiment/*.yaml`, ...).
USER_CONF = "conf"


def user_config_folders() -> list[Path]:
    """The user's own config folders, found without `hydra.searchpath`: `conf/` in the working
    directory, then `conf/` at the root of the repository bench runs from (a source checkout:
    the folder above the package, holding pyproject.toml), each once."""
    repository = Path(__file__).resolve().parents[2]
    candidates = [Path.cwd() / USER_CONF]
    if (repository / "pyproject.toml").is_file():
        candidates.append(repository / USER_CONF)
    folders: list[Path] = []
    for folder in candidates:
        if folder.is_dir() and folder.resolve() not in folders:
            folders.append(folder.resolve())
    return folders


def config_roots(args: list[str], conf_dir: str = CONF_DIR) -> list[Path]:
    """Config folders in Hydra's order: bench's own, each installed plugin's, the user's `conf/`
    folders (`user_config_folders`), then the `hydra.searchpath=[file://...]` folders named in `args`."""
    roots = [Path(conf_dir)] + [folder for _package, folder, _source in config_packages().values()]
    roots += user_config_folders()
    for arg in args:
        if arg.lstrip("+").startswith("hydra.searchpath="):
            for entry in (e.strip() for e in arg.split("=", 1)[1].strip("[]'\"").split(",")):
                if entry.startswith("pkg://"):
                    roots += [f for f in [package_folder(entry[len("pkg://") :].replace("/", "."))] if f]
                elif entry:
                    roots.append(Path(entry.removeprefix("file://")))
    return roots


def group_choices(group: str, roots: list[Path]) -> dict[str, Path]:
    """Choice name -> the YAML file Hydra would pick for it (the first root holding it wins)."""
    files: dict[str, Path] = {}
    for root in roots:
        for path in sorted((root / group).glob("*.yaml")) if (root / group).is_dir() else ():
            files.setdefault(path.stem, path)
    return files


def model_family(path: Path, choices: dict[str, Path]) -> object:
    """The `family` a model config sets, itself or through the configs its defaults list extends
    (`defaults: [gpt, _self_]`, as the dataset-sized presets do); None where none sets one."""
    seen: set[Path] = set()
    pending = [path]
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        config = OmegaConf.load(current)
        if config.get("family") is not None:
            return config.get("family")
        for entry in config.get("defaults") or []:
            name = entry if isinstance(entry, str) else None
            if name and name != "_self_" and name in choices:
                pending.append(choices[name])
    return None


def check_model_family(path: Path, choices: dict[str, Path] | None = None) -> None:
    """One `BenchError` line when the model config at `path` names a family nobody registered."""
    family = model_family(path, choices or {})
    families = available()
    if family not in families:
        raise BenchError(
            f"{path}: family {family!r} is not registered; registered families: {', '.join(sorted(families))}"
        )


def parse_overrides(args: list[str]) -> list:
    """Hydra's parsed overrides of `args`; one `BenchError` line naming an override it cannot parse
    (Hydra's own message adds a second line pointing at its grammar page)."""
    try:
        return OverridesParser.create().parse_overrides(args)
    except OverrideParseException as err:
        reason = str(err.message).strip().splitlines()[0] if str(err.message).strip() else "not an override"
        raise BenchError(
            f"{err.override!r}: could not parse the override ({reason}); expected key=value, "
            "with comma-separated values to sweep"
        ) from None


#: Keys Hydra itself reads (`hydra.run.dir` and `hydra.sweep.dir` are `${results_dir}/${sweep}`):
#: deleting one ends in Hydra's traceback before bench's validation runs.
HYDRA_NEEDS = {
    "results_dir": ("PATH", "where runs land"),
    "sweep": ("NAME", "the folder under results_dir that runs land in"),
}


def check_deletions(overrides: list) -> None:
    """One `BenchError` line for `~key` of a key Hydra needs to name its output folder."""
    for override in overrides:
        if override.is_delete() and override.key_or_group in HYDRA_NEEDS:
            key = override.key_or_group
            value, meaning = HYDRA_NEEDS[key]
            raise BenchError(
                f"{key}: this key is required ({meaning}); set it with {key}={value} instead of deleting it"
            )


def check_group_choices(args: list[str], conf_dir: str = CONF_DIR) -> None:
    """Raise one `BenchError` line for `group=choice` arguments naming no config in any config
    folder (bench's, plugins', the user's), and for a model config whose family is not registered.

    Hydra's own message spans many lines and lists its search path; this one names the choices.
    """
    check_deletions(parse_overrides(args))
    roots = config_roots(args, conf_dir)
    for arg in args:
        group, sep, value = arg.partition("=")
        group = group.lstrip("+~")
        if not sep or "." in group or group.startswith("hydra") or not value:
            continue
        choices = group_choices(group, roots)
        if not choices:
            continue
        for choice in value.split(","):
            if choice == "null":
                continue
            if choice not in choices:
                raise BenchError(f"{group}={choice!r}: expected one of {', '.join(sorted(choices))}")
            if group == "model":
                check_model_family(choices[choice], choices)
