"""Scored samples come from the model's own distribution: temperature 1, no top-k.

`temperature` and `top_k` (the RNN's and GPT's module arguments) shape samples for display
only; every draw that a metric sees goes through `at_temperature_one`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn

#: The sampling options a module may carry, and their values while drawing scored samples.
SCORING_OPTIONS = {"temperature": 1.0, "top_k": None}


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
