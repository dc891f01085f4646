"""The one interface every generator implements.

A `GenerativeModule` is a LightningModule holding the training logic; its architecture is a
plain `nn.Module` (`net`) handed in by config. Every family returns samples as uint8 levels
through `bench.data.quantize`, so real and generated images reach the metrics by one path.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import ClassVar

import pytorch_lightning as pl
import torch
from torch import nn

from bench.core.errors import BenchError, ConfigError
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
    #: Whether the family can condition on a class label (`model.conditional=true`), and whether
    #: its sampler applies classifier-free guidance (`model.module.guidance`).
    supports_conditional: ClassVar[bool] = False
    supports_guidance: ClassVar[bool] = False
    #: Metric that picks the evaluated checkpoint (lower is better); None means "final weights".
    selection_metric: ClassVar[str | None] = "val/bpd"
    #: Under DDP: some parameters get no gradient in some backward pass (a GAN's alternating players),
    #: so DDP must look for unused parameters at every step (slower; `bench.run.fit.ddp_strategy`).
    has_unused_parameters: ClassVar[bool] = False
    #: The network classes (`model.net._target_`, dotted paths) this family is built with. A run
    #: folder someone sent names its network in `result.json`: re-evaluating it builds only a
    #: class listed here (`bench.pipeline.saved_run`), never whatever the record names.
    networks: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        net: nn.Module,
        spec: DatasetSpec,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        lr_schedule: str = "constant",
        warmup_fraction: float = 0.0,
        sample_batch_size: int = 1000,
        conditional: bool = False,
        label_dropout: float = 0.0,
        guidance: float = 0.0,
    ):
        super().__init__()
        if lr_schedule not in LR_SCHEDULES:
            raise ConfigError("model.module.lr_schedule", lr_schedule, f"one of {', '.join(LR_SCHEDULES)}")
        self._check_conditioning(spec, conditional, label_dropout, guidance)
        #: Conditional models take class labels `0..num_classes-1`; `null_label` (= num_classes)
        #: stands for "no label" (dropped labels in training, the unconditional branch of guidance).
        self.conditional = bool(conditional)
        self.num_classes = spec.num_classes if conditional else 0
        self.label_dropout, self.guidance = float(label_dropout), float(guidance)
        self.net = net
        self.spec = spec
        self.lr, self.weight_decay, self.betas = lr, weight_decay, tuple(betas)
        self.lr_schedule, self.warmup_fraction = lr_schedule, warmup_fraction
        self.sample_batch_size = sample_batch_size

    # ---- conditioning -------------------------------------------------------------------
    def _check_conditioning(self, spec: DatasetSpec, conditional: bool, label_dropout: float, guidance: float) -> None:
        if not isinstance(conditional, bool):
            raise ConfigError("model.conditional", conditional, "true or false")
        if conditional and not self.supports_conditional:
            raise ConfigError(
                "model.conditional",
                conditional,
                f"false: the {self.family or type(self).__name__} family does not condition on labels",
            )
        if conditional and spec.num_classes < 2:
            raise ConfigError(
                "model.conditional",
                conditional,
                f"false, or a dataset with at least two classes ({spec.name} has {spec.num_classes})",
            )
        if not 0.0 <= label_dropout < 1.0:
            raise ConfigError("model.module.label_dropout", label_dropout, "a probability in [0, 1)")
        if label_dropout > 0 and not conditional:
            raise ConfigError("model.module.label_dropout", label_dropout, "0 on an unconditional model")
        if not (isinstance(guidance, (int, float)) and math.isfinite(guidance) and guidance >= 0):
            raise ConfigError("model.module.guidance", guidance, "a guidance weight w >= 0")
        if guidance and not (conditional and self.supports_guidance):
            raise ConfigError(
                "model.module.guidance",
                guidance,
                "0: guidance needs a conditional model of a family that supports it "
                f"({self.family or type(self).__name__} with model.conditional={conditional})",
            )

    @property
    def null_label(self) -> int:
        return self.num_classes

    def check_labels(self, labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """`labels` validated for `n` samples and moved to the model's device (None stays None)."""
        if labels is None:
            return None
        if not self.conditional:
            raise BenchError("labels: this model is unconditional (model.conditional=false); sample without labels")
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64:
            kind = labels.dtype if isinstance(labels, torch.Tensor) else type(labels).__name__
            raise BenchError(f"labels: expected an int64 tensor of class indices, got {kind}")
        if labels.shape != (n,):
            raise BenchError(f"labels: expected shape [{n}] (one label per sample), got {list(labels.shape)}")
        if n and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise BenchError(
                f"labels: expected class indices in 0..{self.num_classes - 1}, "
                f"got values in {int(labels.min())}..{int(labels.max())}"
            )
        return labels.to(self.device)

    def training_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """The batch's labels with each replaced by `null_label` with probability `label_dropout`."""
        if self.label_dropout == 0:
            return labels
        drop = torch.rand(labels.shape, device=labels.device) < self.label_dropout
        return labels.masked_fill(drop, self.null_label)

    def marginal_bits_per_dim(self, x: torch.Tensor, conditional_bpd) -> torch.Tensor:
        """-log2 sum_y p(y) p(x | y) / dims under a uniform class prior p(y) = 1/num_classes,
        from `conditional_bpd(x, labels)` (a bound stays a bound: log-sum-exp is monotone)."""
        per_class = torch.stack(
            [
                conditional_bpd(x, torch.full((len(x),), c, dtype=torch.int64, device=x.device))
                for c in range(self.num_classes)
            ]
        )  # [K, B]
        log_p = -per_class.double() * self.spec.dims * math.log(2)  # ln p(x | y)
        log_marginal = torch.logsumexp(log_p, 0) - math.log(self.num_classes)
        return (-log_marginal / (self.spec.dims * math.log(2))).to(per_class.dtype)

    # ---- sampling -------------------------------------------------------------------------
    def generate(
        self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Draw `n` images: float intensities in [0, 1] or integer level indices, `[n, C, H, W]`.

        Conditional models receive `labels` (int64 `[n]`, validated, on the model's device) and
        apply `self.guidance`; unconditional ones are called without them.
        """
        raise NotImplementedError

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Draw `n` samples as uint8 `[n, C, H, W]` in `0..levels-1`, on the CPU.

        `generator` (on the model's device) makes the draw reproducible without touching the
        global RNG. A conditional model draws images of the classes in `labels` (int64 `[n]`);
        without them it draws the labels uniformly with the same generator.
        """
        labels = self.check_labels(labels, n)
        if self.conditional and labels is None:
            device = generator.device if generator is not None else self.device
            labels = torch.randint(0, self.num_classes, (n,), generator=generator, device=device).to(self.device)
        was_training = self.training
        self.eval()
        try:
            chunks = []
            for start in range(0, n, self.sample_batch_size):
                size = min(self.sample_batch_size, n - start)
                drawn = (
                    self.generate(size, generator)
                    if labels is None
                    else self.generate(size, generator, labels=labels[start : start + size])
                )
                chunks.append(quantize(drawn, self.spec.levels).cpu())
        finally:
            self.train(was_training)
        return torch.cat(chunks) if chunks else torch.empty((0, *self.spec.shape), dtype=torch.uint8)

    # ---- likelihood -----------------------------------------------------------------------
    def nll_bits_per_dim(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Negative log-likelihood (or its bound) of uint8 images `[B, C, H, W]`, bits/dim, `[B]`.

        On a conditional model: -log2 p(x | labels) / dims with labels, and the marginal
        (`marginal_bits_per_dim`) without."""
        raise NotImplementedError(f"{type(self).__name__} has no likelihood")

    # ---- parameters -----------------------------------------------------------------------
    def sampling_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters used to draw samples (a GAN's generator only)."""
        return self.net.parameters()

    def num_parameters(self, stage: str = "sampling") -> int:
        params = self.sampling_parameters() if stage == "sampling" else self.net.parameters()
        return sum(p.numel() for p in params)

    # ---- training -------------------------------------------------------------------------
    def training_loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Scalar loss for a uint8 batch (and, on a conditional model, its labels after label
        dropout); likelihood models minimise bits/dim."""
        return (self.nll_bits_per_dim(x) if labels is None else self.nll_bits_per_dim(x, labels)).mean()

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.training_loss(x, self.training_labels(y)) if self.conditional else self.training_loss(x)
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        if self.likelihood == "none":
            return None
        x, y = batch
        # a conditional model is selected by what it is trained on: bits/dim given the label
        bpd = self.nll_bits_per_dim(x, y) if self.conditional else self.nll_bits_per_dim(x)
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
        checkpoint["bench"] = {"family": self.family, "spec": self.spec.to_dict(), "conditional": self.conditional}

    # ---- optional hooks for the evaluation protocol ----------------------------------------
    def analytic_flops(self, kind: str) -> float | None:
        """FLOPs per generated ('sample') or training ('train') image where a counter cannot see
        them (e.g. `nn.LSTM`); None means 'use torch.utils.flop_counter'."""
        return None


def labels_for(n: int, num_classes: int) -> torch.Tensor:
    """Labels for `n` conditional samples spread evenly over the classes (0, 1, ..., K-1, 0, ...)."""
    return torch.arange(n, dtype=torch.int64) % num_classes
