"""A small U-Net that predicts the noise ε in a noised image, conditioned on the timestep.

One resolution step (H×W -> H/2×W/2 and back) with a skip connection: enough for 8×8 digits,
and small enough (about 400k parameters at 48 channels) to match the other families.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from bench.data.spec import DatasetSpec
from bench.errors import ConfigError


def timestep_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of integer timesteps `[B]` -> `[B, dim]` (as in the Transformer)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    """Two 3×3 convolutions with group norm, the timestep added in between, and a residual path."""

    def __init__(self, cin: int, cout: int, time_dim: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Linear(time_dim, cout)
        self.norm2, self.conv2 = nn.GroupNorm(8, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.time(temb)[:, :, None, None]
        return self.conv2(F.silu(self.norm2(h))) + self.skip(x)


class DiffusionUNet(nn.Module):
    """ε-prediction network: noised images `[B, C, H, W]` (in [-1, 1] plus noise) and timesteps
    `[B]` -> predicted noise `[B, C, H, W]`."""

    def __init__(self, spec: DatasetSpec, channels: int = 48, time_dim: int = 128):
        super().__init__()
        if spec.height % 2 or spec.width % 2:
            raise ConfigError("dataset.height/width", f"{spec.height}x{spec.width}",
                              "even sides for the diffusion U-Net (it halves the resolution once)")
        if channels % 8 or channels < 8:
            raise ConfigError("model.net.channels", channels, "a positive multiple of 8 (group norm uses 8 groups)")
        c, c2 = channels, 2 * channels
        self.time_dim = time_dim
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.inp = nn.Conv2d(spec.channels, c, 3, padding=1)
        self.down = ResBlock(c, c, time_dim)
        self.downsample = nn.Conv2d(c, c2, 3, stride=2, padding=1)
        self.mid = ResBlock(c2, c2, time_dim)
        self.upsample = nn.ConvTranspose2d(c2, c, 4, stride=2, padding=1)
        self.up = ResBlock(2 * c, c, time_dim)
        self.out = nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, spec.channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_mlp(timestep_features(t, self.time_dim))
        skip = self.down(self.inp(x), temb)
        h = self.mid(self.downsample(skip), temb)
        h = self.up(torch.cat([self.upsample(h), skip], dim=1), temb)
        return self.out(h)
