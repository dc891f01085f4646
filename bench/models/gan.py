"""DCGAN-style GAN: a transposed-conv generator, a spectral-norm discriminator, and an
exponential moving average (EMA) of the generator that draws every sample.

Training uses manual optimization with two Adam optimizers (generator first, discriminator
second) and a hinge or non-saturating loss. The evaluated model is the final EMA generator
(`selection_metric = None`); the raw generator only feeds training.

Conditional (`model.conditional=true`): the generator takes a learned class embedding
concatenated to z, and the critic is a projection discriminator (Miyato & Koyama, 2018):
`score(x, y) = psi(phi(x)) + <embed(y), sum_hw phi(x)>`, with `phi` the last convolution's
features and an unconditional `psi`. Both embed `num_classes + 1` labels, the last being "no label".
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm
from torch.optim.swa_utils import get_ema_multi_avg_fn

from bench.core.errors import ConfigError
from bench.data.spec import DatasetSpec, to_unit
from bench.models.base import GenerativeModule

LOSSES = ("hinge", "non_saturating")


def _check_shape(spec: DatasetSpec, stages: int) -> tuple[int, int]:
    """Spatial size of the generator's first feature map, `(H / 2**stages, W / 2**stages)`."""
    if stages < 1:
        raise ConfigError("model.net.stages", stages, "a positive integer (resampling stages by 2)")
    factor = 2**stages
    if spec.height % factor or spec.width % factor:
        raise ConfigError(
            "dataset.height/width",
            f"{spec.height}x{spec.width}",
            f"sizes divisible by {factor} for a GAN with {stages} stages on {spec.name!r} "
            f"(its networks resample {stages} times by 2; lower model.net.stages)",
        )
    return spec.height // factor, spec.width // factor


class Generator(nn.Module):
    """Latent `[B, latent_dim]` -> images in `[-1, 1]`, `[B, C, H, W]`.

    A linear layer makes a `hidden * 2**stages`-channel map at `H / 2**stages`; each of the
    `stages` stride-2 transposed convolutions (batch norm, ReLU) doubles the size and halves the
    width; a 3x3 conv and tanh give the pixels. Two stages suit 8x8 and 28x28 (from 2x2 / 7x7),
    three 32x32 (from 4x4, as in DCGAN). With `num_classes > 0`, labels `[B]` (int64,
    `num_classes` meaning "no label") are embedded in `label_dim` numbers concatenated to z.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        latent_dim: int = 64,
        hidden: int = 48,
        stages: int = 2,
        num_classes: int = 0,
        label_dim: int = 16,
    ):
        super().__init__()
        self.start = _check_shape(spec, stages)
        self.latent_dim, self.width = latent_dim, hidden * 2**stages
        h0, w0 = self.start
        label_dim = label_dim if num_classes else 0
        self.project = nn.Sequential(
            nn.Linear(latent_dim + label_dim, self.width * h0 * w0, bias=False),
            nn.BatchNorm1d(self.width * h0 * w0),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for i in range(stages, 0, -1):
            layers += [
                nn.ConvTranspose2d(hidden * 2**i, hidden * 2 ** (i - 1), 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(hidden * 2 ** (i - 1)),
                nn.ReLU(),
            ]
        self.body = nn.Sequential(*layers, nn.Conv2d(hidden, spec.channels, 3, padding=1), nn.Tanh())
        self.label_embedding = nn.Embedding(num_classes + 1, label_dim) if num_classes else None

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.label_embedding is not None:
            z = torch.cat([z, self.label_embedding(labels)], dim=1)
        return self.body(self.project(z).view(len(z), self.width, *self.start))


class MinibatchStd(nn.Module):
    """Appends the batch's mean per-feature standard deviation as one more channel.

    `[B, C, H, W]` -> `[B, C + 1, H, W]`. A collapsed generator's batch has a telltale small
    spread, so the critic can penalize collapse directly.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spread = x.std(dim=0, unbiased=False).mean()
        return torch.cat([x, spread.expand(len(x), 1, *x.shape[2:])], dim=1)


class Discriminator(nn.Module):
    """Images in `[-1, 1]`, `[B, C, H, W]` -> one score per image `[B]`.

    Every weight layer is spectrally normalized, which keeps the critic Lipschitz without a
    gradient penalty; `stages` stride-2 convolutions (doubling the width) mirror the generator.
    With `minibatch_std`, the last of them also sees the batch's spread, so scores depend on the
    whole batch (real and generated batches are scored separately).

    With `num_classes > 0` it is a projection discriminator: the score adds the inner product of
    a (spectrally normalized) label embedding with the last feature map summed over its positions.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        hidden: int = 32,
        slope: float = 0.1,
        minibatch_std: bool = True,
        stages: int = 2,
        num_classes: int = 0,
    ):
        super().__init__()
        h0, w0 = _check_shape(spec, stages)
        act = nn.LeakyReLU(slope)
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(spec.channels, hidden, 3, padding=1)), act]
        for i in range(stages):
            last = i == stages - 1
            extra = 1 if minibatch_std and last else 0
            if extra:
                layers.append(MinibatchStd())
            layers += [
                spectral_norm(nn.Conv2d(hidden * 2**i + extra, hidden * 2 ** (i + 1), 4, stride=2, padding=1)),
                act,
            ]
        self.body = nn.Sequential(
            *layers,
            nn.Flatten(),
            spectral_norm(nn.Linear(hidden * 2**stages * h0 * w0, 1)),
        )
        self.label_embedding = spectral_norm(nn.Embedding(num_classes + 1, hidden * 2**stages)) if num_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.label_embedding is None:
            return self.body(x).squeeze(1)
        features = self.body[:-2](x)  # phi(x): [B, D, h0, w0]
        psi = self.body[-1](features.flatten(1)).squeeze(1)
        return psi + (self.label_embedding(labels) * features.sum((2, 3))).sum(1)


class GANNet(nn.Module):
    """The pair of networks a `GAN` trains: `generator` and `discriminator`."""

    def __init__(
        self,
        spec: DatasetSpec,
        latent_dim: int = 64,
        g_hidden: int = 48,
        d_hidden: int = 32,
        d_slope: float = 0.1,
        minibatch_std: bool = True,
        stages: int = 2,
        num_classes: int = 0,
        label_dim: int = 16,
    ):
        super().__init__()
        self.generator = Generator(spec, latent_dim, g_hidden, stages, num_classes, label_dim)
        self.discriminator = Discriminator(spec, d_hidden, d_slope, minibatch_std, stages, num_classes)

    @property
    def latent_dim(self) -> int:
        return self.generator.latent_dim


def discriminator_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Scalar loss of the critic's scores on real and generated images (`[B]` each)."""
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """Scalar loss of the generator from the critic's scores on its images `[B]`."""
    if kind == "hinge":
        return -fake.mean()
    return F.softplus(-fake).mean()


class GAN(GenerativeModule):
    """Generative adversarial network sampled through an EMA of its generator's weights.

    `d_lr` defaults to `lr`; `d_steps` critic updates run per generator update (one batch each);
    `dequantize` spreads real pixels uniformly over their level's bin, so the critic cannot
    tell real from generated images by the discreteness of the data alone.
    """

    family = "gan"
    networks = ("bench.models.gan.GANNet",)
    likelihood = "none"
    selection_metric = None
    supports_conditional = True
    has_unused_parameters = True  # the critic's step leaves the generator without gradients

    def __init__(
        self,
        net: GANNet | None,
        spec: DatasetSpec,
        lr: float = 1e-3,
        d_lr: float | None = None,
        betas: tuple[float, float] = (0.0, 0.9),
        loss: str = "hinge",
        ema_decay: float = 0.99,
        d_steps: int = 1,
        dequantize: bool = True,
        **kwargs,
    ):
        if not isinstance(net, GANNet):
            raise ConfigError("model.net", type(net).__name__, "a bench.models.gan.GANNet node")
        if loss not in LOSSES:
            raise ConfigError("model.module.loss", loss, f"one of {', '.join(LOSSES)}")
        if not 0.0 <= ema_decay < 1.0:
            raise ConfigError("model.module.ema_decay", ema_decay, "a number in [0, 1)")
        if d_steps < 1:
            raise ConfigError("model.module.d_steps", d_steps, "a positive integer")
        super().__init__(net, spec, lr=lr, betas=betas, **kwargs)
        self.automatic_optimization = False
        self.d_lr = lr if d_lr is None else d_lr
        self.loss, self.ema_decay, self.d_steps, self.dequantize = loss, ema_decay, d_steps, dequantize
        # A registered submodule, so the EMA weights travel in every state dict and checkpoint.
        self.generator_ema = copy.deepcopy(net.generator).requires_grad_(False)
        self._ema_step = get_ema_multi_avg_fn(ema_decay)

    # ---- sampling -------------------------------------------------------------------------
    def generate(
        self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`n` images from the EMA generator as float intensities in `[0, 1]`, `[n, C, H, W]`
        (a conditional model draws each of the classes in `labels` `[n]`)."""
        z = torch.randn(n, self.net.latent_dim, generator=generator, device=self.device)
        return (self._players(labels, n, self.generator_ema)[0](z) + 1.0) / 2.0

    def sampling_parameters(self) -> Iterator[nn.Parameter]:
        return self.net.generator.parameters()

    # ---- training -------------------------------------------------------------------------
    def configure_optimizers(self):
        net = self.net
        opt_g = torch.optim.Adam(
            net.generator.parameters(), lr=self.lr, betas=self.betas, weight_decay=self.weight_decay
        )
        opt_d = torch.optim.Adam(net.discriminator.parameters(), lr=self.d_lr, betas=self.betas)
        # `initial_lr` names each group's base rate, for schedules that scale it.
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])
        return [opt_g, opt_d]

    def _real(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 `[B, C, H, W]` -> the critic's input scale `[-1, 1]`."""
        unit = to_unit(x, self.spec.levels)
        if self.dequantize:
            unit = unit + (torch.rand_like(unit) - 0.5) / (self.spec.levels - 1)
        return unit * 2.0 - 1.0

    def _players(self, labels: torch.Tensor | None, n: int, generator: nn.Module | None = None):
        """Generator (`generator`, else the raw one) and critic as functions of images or latents
        alone: conditional ones bound to `labels` `[n]` ("no label" where None), unconditional as they are."""
        g = generator if generator is not None else self.net.generator
        d = self.net.discriminator
        if not self.conditional:
            return g, d
        if labels is None:
            labels = torch.full((n,), self.null_label, dtype=torch.int64, device=self.device)
        return (lambda z: g(z, labels)), (lambda x: d(x, labels))

    def training_loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Critic plus generator loss on one uint8 batch `[B, C, H, W]` (and its labels, on a
        conditional model): the forward passes of one training step, so its backward counts a
        step's FLOPs (with the critic's weight gradients once more than a step computes).
        Training itself alternates the two players."""
        g, d = self._players(labels, len(x))
        fake = g(torch.randn(len(x), self.net.latent_dim, device=self.device))
        d_loss = discriminator_loss(self.loss, d(self._real(x)), d(fake.detach()))
        return d_loss + generator_loss(self.loss, d(fake))

    def training_step(self, batch, batch_idx):
        x, y = batch
        opt_g, opt_d = self.optimizers()
        # real and generated images of a batch share its labels (after label dropout)
        g, d = self._players(self.training_labels(y) if self.conditional else None, len(x))
        real = self._real(x)
        z = torch.randn(len(x), self.net.latent_dim, device=self.device)

        fake = g(z)
        d_loss = discriminator_loss(self.loss, d(real), d(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self.log("train/d_loss", d_loss, on_step=True, on_epoch=False)

        if (batch_idx + 1) % self.d_steps == 0:
            # Reuses this batch's generated images: the critic just moved, so they score anew.
            # Toggling freezes the critic's weights, so this backward computes no gradients for them.
            with self.toggled_optimizer(opt_g):
                g_loss = generator_loss(self.loss, d(fake))
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(g_loss)
                opt_g.step()
            self.update_ema()
            self.log("train/g_loss", g_loss, on_step=True, on_epoch=False)
            self.log("train/loss", g_loss + d_loss.detach(), on_step=True, on_epoch=False)

    @torch.no_grad()
    def update_ema(self) -> None:
        """`ema <- decay * ema + (1 - decay) * raw` for every generator weight; buffers
        (batch-norm statistics) are copied from the raw generator."""
        ema, raw = self.generator_ema, self.net.generator
        self._ema_step(list(ema.parameters()), list(raw.parameters()), None)
        for e, r in zip(ema.buffers(), raw.buffers()):
            e.copy_(r)
