"""For the tests that run a sweep's jobs in parallel processes: the reference classifier they all
need, trained once beforehand into the session's cache."""

from __future__ import annotations

from omegaconf import OmegaConf

from bench.data import ImageDataModule
from bench.evaluate.reference.extractor import load_extractor
from tests.helpers.configs import compose_config


def warm_reference_cache() -> None:
    """Train the procedural reference classifier once in this process, so the parallel jobs load
    it from the session cache instead of each training it at the same time."""
    cfg = compose_config(["dataset=procedural"])
    load_extractor(ImageDataModule(**OmegaConf.to_container(cfg.dataset, resolve=True)), int(cfg.protocol.version))
