"""Networks that misbehave on purpose, for the tests of published numbers (`test_numbers_*.py`).

Each subclasses the VAE's `ConvVAENet`, so a run selects one with
`model.net._target_=tests.helpers.numbers_nets.<Name>` and everything else stays as configured.
"""

from __future__ import annotations

import time

import torch

from bench.models.cnn_decoder import ConvVAENet


class NaNVAENet(ConvVAENet):
    """Decodes every latent to NaN logits, so the training loss is NaN from the first step."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return super().decode(z) * float("nan")


class InterruptingVAENet(ConvVAENet):
    """Raises KeyboardInterrupt (as Ctrl+C would) in the forward pass of training step `at_step`."""

    def __init__(self, spec, at_step: int = 3, **kwargs):
        super().__init__(spec, **kwargs)
        self.at_step, self.training_calls = at_step, 0

    def encode(self, x01: torch.Tensor):
        if torch.is_grad_enabled():
            self.training_calls += 1
            if self.training_calls == self.at_step:
                raise KeyboardInterrupt
        return super().encode(x01)


class SleepyVAENet(ConvVAENet):
    """Sleeps `pause` seconds in every decode made without gradients (sampling, validation, scoring):
    evaluation that is slow on purpose, so its time is easy to tell apart from training's."""

    def __init__(self, spec, pause: float = 0.2, **kwargs):
        super().__init__(spec, **kwargs)
        self.pause = pause

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():
            time.sleep(self.pause)
        return super().decode(z)
