"""CNN decoder family: a VAE with a convolutional encoder and a deconvolutional decoder.

The decoder outputs a categorical distribution over the data's levels for every sub-pixel (each
channel of each pixel, independently given the latent), so the ELBO (and the tighter
importance-weighted bound) are bits/dim on the same discretization as the autoregressive
families' exact likelihoods, and p(x|z) sums to exactly 1 over all images.

Why a categorical rather than a discretized logistic mixture: it is exact on any number of levels
(17 for digits, 2 for binarized MNIST, 256 for MNIST/CIFAR), makes no smoothness assumption
about neighbouring levels, and keeps one code path for every dataset. Its cost is the output
size: `C*H*W*levels` logits per image, 3 MiB in float32 at 32x32x3 with 256 levels (a 10-component
logistic mixture needs 100 numbers per pixel there, 0.4 MiB). Decoding for the IWAE bound and for sampling therefore runs in
chunks of at most `LOGITS_PER_CHUNK` logits, so memory stays bounded whatever `k` or `n`.

Conditional (`model.conditional=true`), it is a CVAE (Sohn et al., 2015): the label's one-hot
vector reaches both the encoder, q(z | x, y), as constant input channels, and the decoder,
p(x | z, y), concatenated to z; the prior stays N(0, I). The "no label" entry (`null_label`, from
label dropout) is the all-zero vector.
"""

from __future__ import annotations

import math
from itertools import repeat

import torch
import torch.nn.functional as F
from torch import nn

from bench.core.errors import ConfigError
from bench.data.spec import DatasetSpec, to_unit
from bench.models.base import GenerativeModule
from bench.models.pixel_tokens import draw

LOG2 = math.log(2.0)
#: Most decoder logits held at once when decoding for the IWAE bound or for sampling
#: (2**26 float32 = 256 MiB): one chunk on digits, ~85 images a chunk at 32x32x3 x 256 levels.
LOGITS_PER_CHUNK = 2**26


class ConvVAENet(nn.Module):
    """Encoder `[B, C, H, W] -> (mu, logvar) [B, Z]`; decoder `[B, Z] -> logits [B, L, C, H, W]`
    (levels second, as `F.cross_entropy` expects).

    Two stride-2 stages each way, so H and W must be divisible by 4. With `num_classes > 0`, both
    take labels `[B]` (int64, `num_classes` meaning "no label") as a one-hot vector: extra input
    channels of the encoder, extra inputs of the decoder's first layer.
    """

    def __init__(
        self, spec: DatasetSpec, latent_dim: int = 8, hidden: int = 32, dropout: float = 0.0, num_classes: int = 0
    ):
        super().__init__()
        if spec.height % 4 or spec.width % 4:
            raise ConfigError("dataset", f"{spec.height}x{spec.width}", "image sides divisible by 4 for the conv VAE")
        if latent_dim < 1 or hidden < 1:
            raise ConfigError("model.net.latent_dim/hidden", (latent_dim, hidden), "positive integers")
        c, h4, w4 = spec.channels, spec.height // 4, spec.width // 4
        self.levels, self.channels, self.latent_dim = spec.levels, c, latent_dim
        self.num_classes = num_classes
        self._grid = (4 * hidden, h4, w4)
        self.encoder = nn.Sequential(
            nn.Conv2d(c + num_classes, hidden, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(hidden, 2 * hidden, 4, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(2 * hidden, 4 * hidden, 4, stride=2, padding=1),
            nn.SiLU(),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(4 * hidden * h4 * w4, 2 * latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim + num_classes, 4 * hidden * h4 * w4),
            nn.SiLU(),
            nn.Unflatten(1, self._grid),
            nn.ConvTranspose2d(4 * hidden, 2 * hidden, 4, stride=2, padding=1),
            nn.SiLU(),
            nn.ConvTranspose2d(2 * hidden, hidden, 4, stride=2, padding=1),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Conv2d(hidden, c * spec.levels, 3, padding=1),
        )

    def one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        """Labels `[B]` -> float `[B, num_classes]`; the "no label" index gives zeros."""
        return F.one_hot(labels, self.num_classes + 1)[:, : self.num_classes].float()

    def encode(self, x01: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.num_classes:
            y = self.one_hot(labels)[:, :, None, None].expand(-1, -1, *x01.shape[2:])
            x01 = torch.cat([x01, y], dim=1)
        mu, logvar = self.encoder(x01).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            z = torch.cat([z, self.one_hot(labels)], dim=1)
        logits = self.decoder(z)
        b, _, h, w = logits.shape
        return logits.view(b, self.levels, self.channels, h, w)


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Diagonal Gaussian log-density summed over the last dim."""
    return -0.5 * (((z - mu) ** 2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(-1)


class VAE(GenerativeModule):
    """VAE with a categorical pixel decoder; `nll_bits_per_dim` is the negative ELBO.

    Conditional, the bounds are on -log2 p(x | y) given labels, and on the marginal under a
    uniform class prior without them (`marginal_bits_per_dim`, still a bound).
    """

    family = "cnn_decoder"
    networks = ("bench.models.cnn_decoder.ConvVAENet",)
    likelihood = "bound"
    supports_conditional = True

    def __init__(self, net: ConvVAENet, spec: DatasetSpec, kl_warmup_fraction: float = 0.0, **kwargs):
        super().__init__(net, spec, **kwargs)
        self.kl_warmup_fraction = kl_warmup_fraction

    @property
    def logits_per_image(self) -> int:
        """Decoder outputs per image (any decoder net): one logit per level per sub-pixel."""
        return self.spec.dims * self.spec.levels

    def _log_px(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) summed over pixels: logits `[B, L, C, H, W]`, x uint8 `[B, C, H, W]` -> `[B]`."""
        return -F.cross_entropy(logits, x.long(), reduction="none").flatten(1).sum(1)

    # The net sees labels only when conditional, so unconditional nets keep `encode(x01)`, `decode(z)`.
    def _encode(self, x: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        x01 = to_unit(x, self.spec.levels)
        return self.net.encode(x01) if labels is None else self.net.encode(x01, labels)

    def _decode(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.net.decode(z) if labels is None else self.net.decode(z, labels)

    def _elbo_terms(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self._encode(x, labels)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        rec = -self._log_px(self._decode(z, labels), x)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        return rec, kl

    def nll_bits_per_dim(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.conditional and labels is None:
            return self.marginal_bits_per_dim(x, self.nll_bits_per_dim)
        rec, kl = self._elbo_terms(x, self.check_labels(labels, len(x)))
        return (rec + kl) / (self.spec.dims * LOG2)

    def training_loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Negative ELBO in bits/dim, its KL term scaled up from 0 over `kl_warmup_fraction` of
        the budget. A conditional model takes labels after dropout (`null_label` allowed); without
        them (as when FLOPs are counted) it trains on "no label"."""
        if self.conditional and labels is None:
            labels = torch.full((len(x),), self.null_label, dtype=torch.int64, device=x.device)
        rec, kl = self._elbo_terms(x, labels)
        beta = 1.0
        budget = getattr(self.trainer, "bench_budget", None) if self._trainer is not None else None
        if self.kl_warmup_fraction > 0 and budget is not None:
            beta = min(1.0, budget.fraction / self.kl_warmup_fraction)
        return (rec + beta * kl).mean() / (self.spec.dims * LOG2)

    @torch.no_grad()
    def iwae_bits_per_dim(self, x: torch.Tensor, k: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Importance-weighted bound with `k` samples (tighter than the ELBO for k > 1), `[B]`."""
        if self.conditional and labels is None:
            return self.marginal_bits_per_dim(x, lambda xs, ys: self.iwae_bits_per_dim(xs, k, ys))
        labels = self.check_labels(labels, len(x))
        mu, logvar = self._encode(x, labels)
        b, zdim = mu.shape
        eps = torch.randn(k, b, zdim, device=mu.device)
        z = mu + eps * torch.exp(0.5 * logvar)  # [k, B, Z]
        per_chunk = max(1, LOGITS_PER_CHUNK // (b * self.logits_per_image))
        log_px = torch.cat(
            [  # [k, B], decoded a few importance samples at a time
                self._log_px(
                    self._decode(zc.reshape(-1, zdim), None if labels is None else labels.repeat(len(zc))),
                    x.repeat(len(zc), 1, 1, 1),
                ).view(len(zc), b)
                for zc in z.split(per_chunk)
            ]
        )
        log_w = log_px + _log_normal(z, torch.zeros_like(z), torch.zeros_like(z)) - _log_normal(z, mu, logvar)
        log_p = torch.logsumexp(log_w, dim=0) - math.log(k)
        return -log_p / (self.spec.dims * LOG2)

    def sampling_parameters(self):
        return self.net.decoder.parameters()

    def generate(
        self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Level indices `[n, C, H, W]` int64: one latent per image, then every sub-pixel drawn
        from its categorical (decoded in chunks of at most `LOGITS_PER_CHUNK` logits); a
        conditional model decodes each latent with its label `[n]`."""
        z = torch.randn(n, self.net.latent_dim, generator=generator, device=self.device)
        per_chunk = max(1, LOGITS_PER_CHUNK // self.logits_per_image)
        label_chunks = repeat(None) if labels is None else labels.split(per_chunk)
        draws = []
        for zc, yc in zip(z.split(per_chunk), label_chunks):
            logits = self._decode(zc, yc).movedim(1, -1).reshape(-1, self.spec.levels)  # [n' * C*H*W, L]
            draws.append(draw(logits, generator).view(len(zc), *self.spec.shape))
        return torch.cat(draws)
