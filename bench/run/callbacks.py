"""The extra Lightning callbacks a run's `callbacks` config names, each built from its `_target_`.

bench's own callbacks (budget, checkpoints, RNG state, phase times, progress, the quality curve)
are wired by the training code; this section is for a user's additions, and it is hashed.
"""

from __future__ import annotations

from omegaconf import DictConfig
from pytorch_lightning import Callback

from bench.run.targets import build_target


def make_callbacks(cfg: DictConfig) -> list[Callback]:
    """One callback per entry of `cfg.callbacks`, in the order the config lists them."""
    return [build_target(entry, f"callbacks.{name}", Callback) for name, entry in (cfg.get("callbacks") or {}).items()]
