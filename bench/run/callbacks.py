"""The extra Lightning callbacks a run's `callbacks` config names, each built from its `_target_`.

bench's own callbacks (budget, checkpoints, RNG state, phase times, progress, the quality curve)
are wired by the training code; this section is for a user's additions, and it is hashed.
"""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning import Callback

from bench.core.errors import BenchError


def make_callbacks(cfg: DictConfig) -> list[Callback]:
    """One callback per entry of `cfg.callbacks`, in the order the config lists them."""
    built = []
    for name, entry in (cfg.get("callbacks") or {}).items():
        try:
            callback = instantiate(entry)
        except Exception as err:  # a class that does not exist or does not take these keys: the config's mistake
            cause = err.__cause__ or err
            raise BenchError(
                f"callbacks.{name}: could not build {entry.get('_target_')} ({type(cause).__name__}: "
                f"{str(cause).splitlines()[0] if str(cause) else ''})"
            ) from None
        if not isinstance(callback, Callback):
            raise BenchError(
                f"callbacks.{name}._target_={entry.get('_target_')}: expected a pytorch_lightning Callback class"
            )
        built.append(callback)
    return built
