"""Model families by name: the built-in ones plus installed plugins.

A plugin package declares two entry points: group `bench.models` maps a family name to its
`GenerativeModule` class ("pkg.module:Class"), group `bench.configs` maps a name to the Python
package holding its Hydra config groups ("pkg.conf", with e.g. `model/<name>.yaml` inside).
The registry is also the allow-list: a config can only build a module class registered here.
A broken plugin costs one warning line naming it and the problem; every other model still works.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from bench.config.plugins import PluginSource, available, family_source, warn_plugin
from bench.core.errors import BenchError
from bench.models.base import GenerativeModule


def _load(name: str, target: str, source: PluginSource) -> type:
    """The class at `target`; a `BenchError` sentence naming the plugin when it is not a usable family."""
    who = f"family {name!r}" if source.package is None else f"plugin {source.describe()} (family {name!r})"
    module_name, _, attr = target.partition(":")
    try:
        cls: Any = importlib.import_module(module_name)
        for part in attr.split(".") if attr else ():
            cls = getattr(cls, part)
    except Exception as err:  # any import-time failure of third-party code is the plugin's problem
        raise BenchError(f"{who}: {target} failed to import: {type(err).__name__}: {err}") from None
    if not (isinstance(cls, type) and issubclass(cls, GenerativeModule)):
        raise BenchError(f"{who}: {target} is not a GenerativeModule subclass")
    if cls.family != name:  # records and reports name the class's family: two names would split a model's rows
        raise BenchError(
            f"{who}: {target} sets family = {cls.family!r}; expected {name!r}, the name it is registered under"
        )
    return cls


def get_family(name: str) -> type:
    """The `GenerativeModule` subclass registered as `name`."""
    targets = available()
    if name not in targets:
        raise BenchError(f"model.family={name!r}: expected one of {', '.join(sorted(targets))}")
    return _load(name, targets[name], family_source(name))


def usable_families() -> dict[str, type]:
    """Every family that loads; each plugin that does not costs one warning line."""
    families: dict[str, type] = {}
    for name in sorted(available()):
        try:
            families[name] = get_family(name)
        except BenchError as err:
            warn_plugin(str(err))
    return families
