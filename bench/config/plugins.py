"""Installed plugins, found by entry point without importing them: family names and config packages.

A plugin package declares two entry points: group `bench.models` maps a family name to its
`GenerativeModule` class ("pkg.module:Class"), group `bench.configs` maps a name to the Python
package holding its Hydra config groups ("pkg.conf", with e.g. `model/<name>.yaml` inside).
Loading a family's class is `bench.models.registry`'s job; this module only reads metadata, so
the config layer can list names without importing torch. A broken plugin costs one warning line.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

ENTRY_POINT_GROUP = "bench.models"


CONFIG_ENTRY_POINT_GROUP = "bench.configs"


BUILTIN: dict[str, str] = {
    "cnn_decoder": "bench.models.cnn_decoder:VAE",
    "gan": "bench.models.gan:GAN",
    "rnn": "bench.models.rnn:PixelRNN",
    "gpt": "bench.models.gpt:PixelGPT",
    "independent_pixels": "bench.models.baselines:IndependentPixels",
    "copier": "bench.models.baselines:TrainingSetCopier",
}


_warned: set[str] = set()


def warn_plugin(message: str) -> None:
    """One `warning:` line on stderr, once per process (sweeps and listings ask repeatedly)."""
    if message not in _warned:
        _warned.add(message)
        print(f"warning: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class PluginSource:
    """Where a family or config package comes from: `package` None means built into bench."""

    package: str | None = None
    version: str | None = None

    def describe(self) -> str:
        return "built-in" if self.package is None else f"{self.package} {self.version or '?'}"


def _source(ep: EntryPoint) -> PluginSource:
    dist = getattr(ep, "dist", None)
    return (
        PluginSource(dist.name, dist.version)
        if dist is not None
        else PluginSource(ep.value.split(".")[0].split(":")[0])
    )


def _plugin_entry_points(group: str) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        if ep.name in found and found[ep.name].value != ep.value:
            warn_plugin(
                f"plugin {_source(ep).describe()}: {group} name {ep.name!r} is declared twice; "
                f"using {found[ep.name].value}"
            )
            continue
        found.setdefault(ep.name, ep)
    return found


def _plugin_targets() -> dict[str, EntryPoint]:
    """Plugin families, minus those clashing with a built-in (the built-in wins, with a warning)."""
    plugins = _plugin_entry_points(ENTRY_POINT_GROUP)
    for name in sorted(set(plugins) & set(BUILTIN)):
        warn_plugin(
            f"plugin {_source(plugins[name]).describe()}: family {name!r} clashes with a built-in family; "
            "the built-in is used"
        )
    return {name: ep for name, ep in plugins.items() if name not in BUILTIN}


def available() -> dict[str, str]:
    """Family name -> 'module:Class' for built-ins and installed plugins (built-ins win)."""
    return {**{name: ep.value for name, ep in _plugin_targets().items()}, **BUILTIN}


def family_source(name: str) -> PluginSource:
    """The package (and version) that provides family `name`."""
    if name in BUILTIN:
        return PluginSource()
    plugins = _plugin_targets()
    return _source(plugins[name]) if name in plugins else PluginSource()


def config_packages() -> dict[str, tuple[str, Path, PluginSource]]:
    """Plugin name -> (package name, folder, source) of every installed plugin's config package.

    A package that cannot be found costs a warning line and is left out.
    """
    found: dict[str, tuple[str, Path, PluginSource]] = {}
    for name, ep in sorted(_plugin_entry_points(CONFIG_ENTRY_POINT_GROUP).items()):
        package, source = ep.value.strip(), _source(ep)
        folder = package_folder(package)
        if folder is None:
            warn_plugin(
                f"plugin {source.describe()}: its config package {package!r} ({CONFIG_ENTRY_POINT_GROUP} "
                f"entry point {name!r}) was not found; its configs are not available"
            )
            continue
        found[name] = (package, folder, source)
    return found


def package_folder(package: str) -> Path | None:
    """The folder of an importable package (as Hydra's `pkg://` provider reads it), or None."""
    try:
        spec = importlib.util.find_spec(package)
    except Exception:  # the parent of a config package may itself fail to import
        return None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(folders[0]) if folders and Path(folders[0]).is_dir() else None
