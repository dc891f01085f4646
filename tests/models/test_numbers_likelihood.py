"""Bits/dim that the protocol publishes, checked on an image space small enough to enumerate.

On 1x2x2 images with 3 levels there are 81 images: an exact likelihood must give them
probabilities summing to 1, and a bound (the VAE's ELBO and IWAE) at most 1.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bench.data.spec import DatasetSpec
from bench.evaluate.metrics.likelihood import bits_per_dim
from bench.models.baselines import IndependentPixels
from bench.models.cnn_decoder import VAE
from bench.models.gpt import PixelGPT, PixelGPTNet
from bench.models.rnn import PixelRNN, PixelRNNNet

TINY = DatasetSpec(
    name="tiny", channels=1, height=2, width=2, levels=3, split_seed=0, train_size=81, val_size=0, test_size=0
)
EVERY_IMAGE = torch.cartesian_prod(*[torch.arange(TINY.levels)] * TINY.dims).to(torch.uint8).view(-1, *TINY.shape)
DRAWS = 200  # independent bound evaluations per image


class TinyVAENet(nn.Module):
    """The interface of `ConvVAENet` (encode -> mu, logvar `[B, Z]`; decode -> logits `[B, L, C, H, W]`)
    with one linear layer each way: the conv net needs sides divisible by 4."""

    def __init__(self, spec: DatasetSpec, latent_dim: int = 2):
        super().__init__()
        self.levels, self.channels, self.latent_dim, self.shape = spec.levels, spec.channels, latent_dim, spec.shape
        self.encoder = nn.Linear(spec.dims, 2 * latent_dim)
        self.decoder = nn.Linear(latent_dim, spec.levels * spec.dims)
        with torch.no_grad():  # strong weights: the posterior matters, so bounds differ visibly
            self.decoder.weight.mul_(4.0)

    def encode(self, x01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x01.flatten(1)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).view(len(z), self.levels, *self.shape)


@pytest.fixture(scope="module")
def vae() -> VAE:
    torch.manual_seed(0)
    return VAE(TinyVAENet(TINY), TINY).eval()


def _draws(fn, seed: int = 0, draws: int = DRAWS) -> torch.Tensor:
    """`fn` on every image `draws` times with fresh noise: bits/dim `[draws, 81]` (float64)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        return fn(EVERY_IMAGE.repeat(draws, 1, 1, 1)).double().view(draws, len(EVERY_IMAGE))


def _total_probability(bits: torch.Tensor) -> float:
    """Sum over the 81 images of 2^(-dims * bits/dim)."""
    return float(torch.exp2(-TINY.dims * bits).sum())


def test_iwae_bound_gives_every_image_together_at_most_probability_one(vae):
    totals = {}
    for k in (1, 8, 64):
        mean_bits = _draws(lambda x, k=k: vae.iwae_bits_per_dim(x, k)).mean(0)
        totals[k] = _total_probability(mean_bits)
    # Jensen: E[log p_hat] <= log p(x), so the mean bound's probabilities sum to <= 1, tighter as k grows
    assert totals[64] <= 1.0 + 1e-3, totals
    assert totals[1] < totals[8] < totals[64], totals
    # near 1 (0.90 here, the encoder being untrained): bits are base 2 and per dimension, not per image
    assert totals[64] > 0.8, totals


def test_iwae_at_k_1_equals_the_elbo_in_expectation(vae):
    draws = 10 * DRAWS
    iwae = _draws(lambda x: vae.iwae_bits_per_dim(x, 1), seed=1, draws=draws)
    elbo = _draws(vae.nll_bits_per_dim, seed=2, draws=draws)
    # per image, and over all images (where the standard error is 9x smaller: the KL term is ~0.1 bits/dim)
    per_image = torch.sqrt((iwae.var(0) + elbo.var(0)) / draws)
    assert torch.all((iwae.mean(0) - elbo.mean(0)).abs() <= 5 * per_image)
    overall = math.sqrt((iwae.mean(1).var() + elbo.mean(1).var()) / draws)
    assert abs(float(iwae.mean() - elbo.mean())) <= 5 * overall
    # the two are not trivially equal: the ELBO is loose here, and k = 64 tightens it
    assert float(elbo.mean() - _draws(lambda x: vae.iwae_bits_per_dim(x, 64)).mean()) > 0.02


def test_published_vae_bits_per_dim_is_the_iwae_bound_with_the_elbo_beside_it(vae):
    images = EVERY_IMAGE.repeat(20, 1, 1, 1)
    published = bits_per_dim(vae, images, iwae_k=64, seed=0)
    assert published["bits_per_dim_kind"] == "bound"
    iwae = _draws(lambda x: vae.iwae_bits_per_dim(x, 64), seed=3).mean()
    elbo = _draws(vae.nll_bits_per_dim, seed=4).mean()
    assert published["bits_per_dim"] == pytest.approx(float(iwae), abs=0.01)
    assert published["elbo_bits_per_dim"] == pytest.approx(float(elbo), abs=0.02)


def _exact_models():
    torch.manual_seed(0)
    pixels = IndependentPixels(None, TINY)
    pixels.fit_closed_form(EVERY_IMAGE[torch.randint(len(EVERY_IMAGE), (40,))])
    rnn = PixelRNN(PixelRNNNet(TINY, hidden=16, layers=2, embed_dim=8), TINY)
    gpt = PixelGPT(PixelGPTNet(TINY, d_model=16, layers=2, heads=2), TINY)
    return {"independent_pixels": pixels, "rnn": rnn, "gpt": gpt}


@pytest.mark.parametrize("name", ["independent_pixels", "rnn", "gpt"])
def test_exact_likelihoods_give_every_image_together_probability_one(name):
    module = _exact_models()[name].eval()
    published = bits_per_dim(module, EVERY_IMAGE, iwae_k=1, seed=0)
    assert published["bits_per_dim_kind"] == "exact"
    with torch.no_grad():
        bits = module.nll_bits_per_dim(EVERY_IMAGE).double()
    assert _total_probability(bits) == pytest.approx(1.0, abs=1e-5)
    assert published["bits_per_dim"] == pytest.approx(float(bits.mean()), rel=1e-6)
