"""Training's random state in `last.ckpt`, so a resumed run draws what an uninterrupted one would.

Lightning restores weights, optimizers and loop counters but not the RNGs behind batch order
and dropout. `RngState` saves torch (CPU and CUDA), NumPy and Python RNG states with every
checkpoint and puts them back when training starts from one. Validation runs on a forked RNG,
so it never consumes training's. What it cannot restore: a checkpoint taken mid-epoch resumes
at the next epoch boundary's RNG state with a fresh permutation of the interrupted epoch
(Lightning does not restore a sampler's position), so such a run is marked `resumed`.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch


def capture() -> dict[str, Any]:
    """The process's RNG states (torch CPU and CUDA, NumPy, Python), as types that a checkpoint
    loaded with `weights_only=True` accepts (tensors, tuples, numbers)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore(states: dict[str, Any]) -> None:
    """Put back states from `capture()`."""
    torch.set_rng_state(states["torch"])
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(states["python"])
    if states.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class RngState(pl.Callback):
    """Saves and restores training's RNG states; `resumed` says whether a checkpoint was loaded."""

    def __init__(self) -> None:
        self.resumed = False
        self._before_validation: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"rng": capture()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # restored here, as the checkpoint loads: a resumed fit creates its first training
        # iterator (which draws a seed) before any training hook runs
        self.resumed = True
        if state_dict.get("rng") is not None:
            restore(state_dict["rng"])

    def on_validation_start(self, trainer, pl_module) -> None:
        self._before_validation = capture()

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._before_validation is not None:
            restore(self._before_validation)
            self._before_validation = None
