"""Failure injection for sweep tests: networks that raise when used.

`model.net._target_=tests.helpers.failing_net.ExplodingNet` makes every job of a sweep fail in
training. `select_net` fails only chosen jobs: it builds the real network unless the
environment variable `BENCH_TEST_EXPLODE` names this config's `tag` and the job's seed
("tag:seed"), so one job of a sweep can fail while the others run, with config hashes unchanged.
"""

from __future__ import annotations

import os

import torch
from hydra.utils import get_class
from torch import nn

MESSAGE = "ExplodingNet: injected failure"
EXPLODE_ENV = "BENCH_TEST_EXPLODE"


class ExplodingNet(nn.Module):
    """A network whose forward (and any other public method a family calls) raises RuntimeError."""

    def __init__(self, spec=None, **_):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))  # so optimizers have something to hold
        self._armed = True

    def forward(self, *args, **kwargs):
        raise RuntimeError(MESSAGE)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)  # parameters, buffers and submodules
        except AttributeError:
            if name.startswith("_") or not self.__dict__.get("_armed"):
                raise
            return self.forward  # encode/decode/...: fail the same way when called


def _explode(*args, **kwargs):
    raise RuntimeError(MESSAGE)


def select_net(spec, target: str, tag: str, **kwargs) -> nn.Module:
    """`target(spec=spec, **kwargs)`; when `BENCH_TEST_EXPLODE` is "tag:seed" for this tag and the
    seed the job set (`torch.initial_seed()`), its forward and other public methods raise instead,
    while its attributes stay real (families read them when they are built)."""
    net = get_class(target)(spec=spec, **kwargs)
    if os.environ.get(EXPLODE_ENV) == f"{tag}:{torch.initial_seed()}":
        for name, value in vars(type(net)).items():
            if callable(value) and not name.startswith("_"):
                object.__setattr__(net, name, _explode)
    return net
