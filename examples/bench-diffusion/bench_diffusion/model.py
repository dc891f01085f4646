"""A DDPM-style diffusion family: ε-prediction training, DDIM / ancestral sampling, EMA weights.

Training noises a batch at random timesteps and regresses the noise (the "simple" DDPM loss).
Sampling runs `sample_steps` steps of the DDIM update on a sub-sequence of the training
timesteps; `eta = 1` makes each step ancestral (DDPM), `eta = 0` deterministic. Samples are
intensities in [0, 1] that `GenerativeModule.sample` quantizes to the data's levels through
`bench.data.quantize`, like every family. No likelihood is computed (`likelihood = "none"`), so
the model is evaluated at its final (EMA) weights, as the GAN is.
"""

from __future__ import annotations

import copy
from typing import ClassVar, Iterator

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.swa_utils import get_ema_multi_avg_fn

from bench.data.spec import DatasetSpec, to_unit
from bench.errors import ConfigError
from bench.models.base import GenerativeModule


def linear_alpha_bar(timesteps: int) -> torch.Tensor:
    """Cumulative signal fractions ᾱ_t `[timesteps]` of the DDPM linear schedule (β 1e-4 .. 0.02)."""
    betas = torch.linspace(1e-4, 0.02, timesteps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, 0)


class Diffusion(GenerativeModule):
    family: ClassVar[str] = "diffusion"
    networks: ClassVar[tuple[str, ...]] = ("bench_diffusion.net.DiffusionUNet",)
    likelihood: ClassVar[str] = "none"
    selection_metric: ClassVar[str | None] = None

    def __init__(self, net: nn.Module, spec: DatasetSpec, timesteps: int = 1000, sample_steps: int = 50,
                 eta: float = 1.0, ema_decay: float = 0.995, **kwargs):
        if timesteps < 2:
            raise ConfigError("model.module.timesteps", timesteps, "an integer >= 2")
        if not 1 <= sample_steps <= timesteps:
            raise ConfigError("model.module.sample_steps", sample_steps, f"an integer in 1..timesteps ({timesteps})")
        if not 0.0 <= eta <= 1.0:
            raise ConfigError("model.module.eta", eta, "a number in [0, 1] (0: DDIM, 1: ancestral)")
        if not 0.0 <= ema_decay < 1.0:
            raise ConfigError("model.module.ema_decay", ema_decay, "a number in [0, 1)")
        super().__init__(net, spec, **kwargs)
        self.timesteps, self.sample_steps, self.eta, self.ema_decay = timesteps, sample_steps, eta, ema_decay
        self.ema = copy.deepcopy(net).requires_grad_(False)  # a submodule: saved in every checkpoint
        self._ema_step = get_ema_multi_avg_fn(ema_decay)
        alpha_bar = linear_alpha_bar(timesteps)
        self.register_buffer("alpha_bar", alpha_bar.float(), persistent=False)
        self._alpha_bar = alpha_bar.tolist()  # host copy: the sampling loop's scalars never sync the device

    # ---- training -------------------------------------------------------------------------
    def training_loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the predicted noise, uint8 batch `[B, C, H, W]` -> scalar."""
        x0 = to_unit(x, self.spec.levels) * 2.0 - 1.0
        t = torch.randint(0, self.timesteps, (len(x),), device=x.device)
        noise = torch.randn_like(x0)
        ab = self.alpha_bar[t].view(-1, 1, 1, 1)
        return F.mse_loss(self.net(ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise, t), noise)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self._ema_step(list(self.ema.parameters()), list(self.net.parameters()), None)

    def sampling_parameters(self) -> Iterator[nn.Parameter]:
        return self.ema.parameters()

    # ---- sampling -------------------------------------------------------------------------
    def timestep_schedule(self) -> list[int]:
        """The `sample_steps` training timesteps visited when sampling, from T-1 down to 0."""
        steps = torch.linspace(self.timesteps - 1, 0, self.sample_steps).round().long().tolist()
        return sorted(set(steps), reverse=True)

    def generate(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Intensities in [0, 1], `[n, C, H, W]` float, from the EMA network."""
        x = torch.randn((n, *self.spec.shape), generator=generator, device=self.device)
        schedule = self.timestep_schedule()
        for i, t in enumerate(schedule):
            ab, ab_prev = self._alpha_bar[t], (self._alpha_bar[schedule[i + 1]] if i + 1 < len(schedule) else 1.0)
            eps = self.ema(x, torch.full((n,), t, device=self.device, dtype=torch.long))
            x0 = ((x - (1.0 - ab) ** 0.5 * eps) / ab ** 0.5).clamp(-1.0, 1.0)
            eps = (x - ab ** 0.5 * x0) / (1.0 - ab) ** 0.5  # consistent with the clipped x0
            sigma = self.eta * ((1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev)) ** 0.5
            x = ab_prev ** 0.5 * x0 + max(1.0 - ab_prev - sigma ** 2, 0.0) ** 0.5 * eps
            if sigma > 0:
                x = x + sigma * torch.randn(x.shape, generator=generator, device=self.device)
        return (x + 1.0) / 2.0
