"""The contract kit's variety check on samplers without a likelihood, broken on purpose: each
passes the sample contract (shape, levels, reproducible, global RNG untouched) and must fail the kit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.models.base import GenerativeModule
from bench.testing import check_model, check_sample_contract, tiny_spec

LATENT = 8


class Decoder(GenerativeModule):
    """A GAN-like sampler: a latent vector through an untrained linear map and a sigmoid; no
    likelihood, trained by its own loop (so the kit fits nothing)."""

    family = "decoder"
    likelihood = "none"
    selection_metric = None

    def __init__(self, spec):
        super().__init__(nn.Linear(LATENT, spec.dims), spec)
        self.automatic_optimization = False

    def latents(self, n, generator):
        return torch.randn(n, LATENT, generator=generator)

    def generate(self, n, generator=None):
        return torch.sigmoid(self.net(self.latents(n, generator))).view(n, *self.spec.shape)


class OneLatent(Decoder):
    """Collapsed: one latent for the whole draw, so every sample is one image."""

    def latents(self, n, generator):
        return torch.randn(1, LATENT, generator=generator).expand(n, -1)


class FourLatents(Decoder):
    """Nearly collapsed: four latents repeated over the draw."""

    def latents(self, n, generator):
        return torch.randn(4, LATENT, generator=generator)[torch.arange(n) % 4]


class OwnSeed(Decoder):
    """Ignores the generator it is given for one of its own: the same samples under every seed."""

    def latents(self, n, generator):
        return torch.randn(n, LATENT, generator=torch.Generator().manual_seed(0))


def _build(cls):
    return lambda spec: cls(spec)


def test_a_varied_sampler_without_a_likelihood_passes_the_kit():
    ran = check_model(_build(Decoder))
    assert ran == ["sample contract", "checkpoint round trip", "samples vary with the generator"]


@pytest.mark.parametrize(
    "cls, message",
    [
        (OneLatent, r"only 1 different images among 64 samples .* collapses"),
        (FourLatents, r"only 4 different images among 64 samples"),
        (OwnSeed, r"64 of 64 samples are the same under generator seeds 1 and 2"),
    ],
)
def test_collapsed_or_generator_blind_samplers_fail_the_kit(cls, message):
    spec = tiny_spec(1, 4, 4, 256)
    check_sample_contract(cls(spec), expect_variety=False)  # what the kit checked of a sampler without a likelihood
    with pytest.raises(AssertionError, match="contract check 'samples vary with the generator' .*failed: " + message):
        check_model(_build(cls))


def test_a_model_config_whose_network_its_family_does_not_declare_fails_the_kit():
    from omegaconf import OmegaConf

    from bench.testing.kit import check_network_declared

    declared = OmegaConf.create({"family": "gpt", "net": {"_target_": "bench.models.gpt.PixelGPTNet"}})
    check_network_declared(declared)
    check_network_declared(OmegaConf.create({"family": "copier", "net": None}))
    with pytest.raises(AssertionError, match="network declared: model.net._target_='my_plugin.Net' is not among"):
        check_network_declared(OmegaConf.create({"family": "gpt", "net": {"_target_": "my_plugin.Net"}}))
