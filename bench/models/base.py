"""The one interface every generator implements.

A `GenerativeModule` is a LightningModule holding the training logic; its architecture is a
plain `nn.Module` (`net`) handed in by config. Every family returns samples as uint8 levels
through `bench.data.quantize`, so real and generated images reach the metrics by one path.
"""

from __future__ import annotations

import math
from typing import ClassVar, Iterator

import pytorch_lightning as pl
import torch
from torch import nn

from bench.data.spec import DatasetSpec, quantize

LIKELIHOOD_KINDS = ("exact", "bound", "none")
LR_SCHEDULES = ("constant", "cosine")


class GenerativeModule(pl.LightningModule):
    """Base class of every generator in the suite.

    Subclasses set `family` and `likelihood`, implement `generate`, and either
    `nll_bits_per_dim` (likelihood models: the default training loss is its mean) or their own
    `training_step` (e.g. GANs with manual optimization).
    """

    family: ClassVar[str] = ""
    likelihood: ClassVar[str] = "none"  # "exact" (autoregressive), "bound" (VAE), "none" (GAN)
    conditional: ClassVar[bool] = False  # planned: sample(n, generator, labels=...) when True
    #: Metric that picks the evaluated checkpoint (lower is better); None means "final weights".
    selection_metric: ClassVar[str | None] = "val/bpd"
    #: Under DDP: some parameters get no gradient in some backward pass (a GAN's alternating players),
    #: so DDP must look for unused parameters at every step (slower; `bench.fitting.ddp_strategy`).
    has_unused_parameters: ClassVar[bool] = False

    def __init__(self, net: nn.Module, spec: DatasetSpec, lr: float = 1e-3,
                 weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                 lr_schedule: str = "constant", warmup_fraction: float = 0.0,
                 sample_batch_size: int = 1000):
        super().__init__()
        if lr_schedule not in LR_SCHEDULES:
            from bench.errors import ConfigError

            raise ConfigError("model.lr_schedule", lr_schedule, f"one of {', '.join(LR_SCHEDULES)}")
        self.net = net
        self.spec = spec
        self.lr, self.weight_decay, self.betas = lr, weight_decay, tuple(betas)
        self.lr_schedule, self.warmup_fraction = lr_schedule, warmup_fraction
        self.sample_batch_size = sample_batch_size

    # ---- sampling -------------------------------------------------------------------------
    def generate(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw `n` images: float intensities in [0, 1] or integer level indices, `[n, C, H, W]`."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw `n` samples as uint8 `[n, C, H, W]` in `0..levels-1`, on the CPU.

        `generator` (on the model's device) makes the draw reproducible without touching the
        global RNG.
        """
        was_training = self.training
        self.eval()
        try:
            chunks = [
                quantize(self.generate(min(self.sample_batch_size, n - start), generator), self.spec.levels).cpu()
                for start in range(0, n, self.sample_batch_size)
            ]
        finally:
            self.train(was_training)
        return torch.cat(chunks) if chunks else torch.empty((0, *self.spec.shape), dtype=torch.uint8)

    # ---- likelihood -----------------------------------------------------------------------
    def nll_bits_per_dim(self, x: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood (or its bound) of uint8 images `[B, C, H, W]`, bits/dim, `[B]`."""
        raise NotImplementedError(f"{type(self).__name__} has no likelihood")

    # ---- parameters -----------------------------------------------------------------------
    def sampling_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters used to draw samples (a GAN's generator only)."""
        return self.net.parameters()

    def num_parameters(self, stage: str = "sampling") -> int:
        params = self.sampling_parameters() if stage == "sampling" else self.net.parameters()
        return sum(p.numel() for p in params)

    # ---- training -------------------------------------------------------------------------
    def training_loss(self, x: torch.Tensor) -> torch.Tensor:
        """Scalar loss for a uint8 batch; likelihood models minimise bits/dim."""
        return self.nll_bits_per_dim(x).mean()

    def training_step(self, batch, batch_idx):
        x, _ = batch
        loss = self.training_loss(x)
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        if self.likelihood == "none":
            return None
        bpd = self.nll_bits_per_dim(batch[0])
        self.log("val/bpd", bpd.mean(), on_step=False, on_epoch=True, batch_size=len(bpd), prog_bar=True)
        return None

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=self.lr, betas=self.betas, weight_decay=self.weight_decay)

    def lr_factor(self, budget_fraction: float) -> float:
        """Multiplier of the base learning rate after `budget_fraction` of the training budget.

        The schedule follows the budget (wall-clock or samples), so a cosine decay ends when the
        budget does, whatever the speed of the machine.
        """
        if self.warmup_fraction > 0 and budget_fraction < self.warmup_fraction:
            return max(budget_fraction / self.warmup_fraction, 1e-3)
        if self.lr_schedule == "constant":
            return 1.0
        span = max(1.0 - self.warmup_fraction, 1e-9)
        progress = min(max((budget_fraction - self.warmup_fraction) / span, 0.0), 1.0)
        return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["bench"] = {"family": self.family, "spec": self.spec.to_dict()}

    # ---- optional hooks for the evaluation protocol ----------------------------------------
    def analytic_flops(self, kind: str) -> float | None:
        """FLOPs per generated ('sample') or training ('train') image where a counter cannot see
        them (e.g. `nn.LSTM`); None means 'use torch.utils.flop_counter'."""
        return None
