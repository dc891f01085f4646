"""Scored samples come from the model's own distribution: temperature 1, no top-k, no guidance.

`temperature` and `top_k` (the RNN's and GPT's module arguments) and `guidance` (classifier-free
guidance weight of conditional models) shape samples for display only; every draw that a metric
sees goes through `at_temperature_one`, except the protocol's guidance sweep (`with_guidance`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from bench.core.errors import ConfigError

#: The sampling options a module may carry, and their values while drawing scored samples.
SCORING_OPTIONS = {"temperature": 1.0, "top_k": None, "guidance": 0.0}


@contextmanager
def at_temperature_one(module: nn.Module) -> Iterator[nn.Module]:
    """Set the module's display sampling options to the scoring values for the block, then restore them."""
    saved = {k: getattr(module, k) for k in SCORING_OPTIONS if hasattr(module, k)}
    try:
        for key in saved:
            setattr(module, key, SCORING_OPTIONS[key])
        yield module
    finally:
        for key, value in saved.items():
            setattr(module, key, value)


@contextmanager
def with_guidance(module: nn.Module, weight: float) -> Iterator[nn.Module]:
    """Scoring options, except classifier-free guidance at `weight`, for the block."""
    if weight and not (getattr(module, "conditional", False) and getattr(module, "supports_guidance", False)):
        raise ConfigError(
            "protocol.guidance_sweep",
            weight,
            f"only 0 for {type(module).__name__}: it is not a conditional model with guidance",
        )
    with at_temperature_one(module):
        module.guidance = float(weight)
        yield module
