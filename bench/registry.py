"""Model families by name: the built-in ones plus entry-point plugins (group `bench.models`).

The registry is also the allow-list: a config can only build a module class registered here.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from bench.errors import BenchError

ENTRY_POINT_GROUP = "bench.models"

BUILTIN: dict[str, str] = {
    "cnn_decoder": "bench.models.cnn_decoder:VAE",
    "gan": "bench.models.gan:GAN",
    "rnn": "bench.models.rnn:PixelRNN",
    "gpt": "bench.models.gpt:PixelGPT",
    "independent_pixels": "bench.models.baselines:IndependentPixels",
    "copier": "bench.models.baselines:TrainingSetCopier",
}


def _plugin_targets() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> dict[str, str]:
    """Family name -> 'module:Class' for built-ins and installed plugins (built-ins win)."""
    return {**_plugin_targets(), **BUILTIN}


def get_family(name: str) -> type:
    """The `GenerativeModule` subclass registered as `name`."""
    from bench.models.base import GenerativeModule

    targets = available()
    if name not in targets:
        raise BenchError(f"model.family={name!r}: expected one of {', '.join(sorted(targets))}")
    module_name, _, attr = targets[name].partition(":")
    cls: Any = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, GenerativeModule)):
        raise BenchError(f"model.family={name!r} points to {targets[name]}, which is not a GenerativeModule")
    return cls
