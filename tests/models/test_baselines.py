"""The closed-form baselines: per-pixel categorical and training-set copier."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

from bench.core.errors import BenchError
from bench.models.baselines import IndependentPixels, TrainingSetCopier
from bench.models.build import build_model


def test_independent_pixels_bits_per_dim_on_digits(digits):
    module = IndependentPixels(None, digits.spec)
    uniform = module.nll_bits_per_dim(digits.test_images[:10])
    assert torch.allclose(uniform, torch.full((10,), math.log2(17)))  # before fitting: uniform
    module.fit_closed_form(digits.train_images)
    bpd = module.nll_bits_per_dim(digits.test_images).mean().item()
    assert 2.35 < bpd < 2.50  # anchors: 2.438 on a 1,347-image train split
    assert module.nll_bits_per_dim(digits.train_images).mean().item() < bpd  # fitted on train


def test_independent_pixels_samples_follow_the_fitted_marginals(digits):
    module = IndependentPixels(None, digits.spec)
    module.fit_closed_form(digits.train_images)
    samples = module.sample(4000, generator=torch.Generator().manual_seed(0))
    assert samples.dtype == torch.uint8 and samples.shape == (4000, 1, 8, 8)
    real_mean = digits.train_images.double().mean(0)
    assert (samples.double().mean(0) - real_mean).abs().max() < 0.6  # levels 0..16
    again = module.sample(4000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(samples, again)


def test_copier_samples_are_training_images_and_survive_a_checkpoint(digits):
    copier = TrainingSetCopier(None, digits.spec)
    with pytest.raises(BenchError, match="fit_closed_form"):
        copier.sample(3)
    copier.fit_closed_form(digits.train_images)
    samples = copier.sample(50, generator=torch.Generator().manual_seed(1))
    train = {bytes(x.flatten().tolist()) for x in digits.train_images}
    assert all(bytes(s.flatten().tolist()) in train for s in samples)
    restored = TrainingSetCopier(None, digits.spec)
    restored.load_state_dict(copier.state_dict())
    assert torch.equal(restored.sample(50, generator=torch.Generator().manual_seed(1)), samples)


@pytest.mark.parametrize("name", ["independent_pixels", "copier"])
def test_baseline_configs_build(name, digits):
    cfg = OmegaConf.load(f"bench/conf/model/{name}.yaml")
    module = build_model(cfg, digits.spec)
    assert module.fits_in_closed_form and module.family == name
