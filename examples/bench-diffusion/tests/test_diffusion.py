"""The diffusion family: bench's contract kit, the sampler's arithmetic, and its config checks."""

import math

import pytest
import torch
from scipy import stats
from torch import nn

from bench.errors import ConfigError
from bench.testing import check_model_config, tiny_spec
from bench_diffusion.model import Diffusion
from bench_diffusion.net import DiffusionUNet


def test_passes_the_contract_kit_and_a_smoke_bench_train_run(tmp_path):
    ran = check_model_config("diffusion", results_dir=tmp_path)
    assert ran == ["network declared", "sample contract", "checkpoint round trip", "samples vary with the generator", "training loss falls",
                   "bench-train smoke run"]


class OracleNoise(nn.Module):
    """The exact noise of a dataset holding one image `target` in [-1, 1]: ε = (x_t - √ᾱ x*) / √(1-ᾱ)."""

    def __init__(self, target: torch.Tensor, alpha_bar: torch.Tensor):
        super().__init__()
        self.register_buffer("target", target)
        self.register_buffer("alpha_bar", alpha_bar)

    def forward(self, x, t):
        ab = self.alpha_bar[t].view(-1, 1, 1, 1)
        return (x - ab.sqrt() * self.target) / (1 - ab).sqrt()


@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("steps", [1, 10, 100])
def test_sampler_with_the_exact_noise_returns_the_one_training_image(eta, steps):
    spec = tiny_spec(1, 4, 4, 5)
    image = torch.randint(0, spec.levels, (1, *spec.shape), generator=torch.Generator().manual_seed(0))
    model = Diffusion(DiffusionUNet(spec, channels=8), spec, timesteps=200, sample_steps=steps, eta=eta)
    model.ema = OracleNoise(image.float() / (spec.levels - 1) * 2 - 1, model.alpha_bar.double())
    samples = model.sample(6, torch.Generator().manual_seed(1))
    assert torch.equal(samples, image.to(torch.uint8).expand_as(samples))


def alpha_bar_of_linear_betas(timesteps: int) -> torch.Tensor:
    """ᾱ_t = prod_{s <= t} (1 - β_s) for DDPM's linear β from 1e-4 to 0.02, float64 `[timesteps]`."""
    betas = [1e-4 + (0.02 - 1e-4) * t / (timesteps - 1) for t in range(timesteps)]
    products = [math.prod(1.0 - b for b in betas[:t + 1]) for t in range(timesteps)]
    return torch.tensor(products, dtype=torch.float64)


class Recorded(nn.Module):
    """Wraps a noise predictor and keeps the `(t, x_t)` of every call (the sampler's chain)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.chain = inner, []

    def forward(self, x, t):
        self.chain.append((int(t[0]), x.double()))
        return self.inner(x, t)


def posterior(x0, xt, ab_t: float, ab_s: float) -> tuple[torch.Tensor, float]:
    """Mean and variance of q(x_s | x_t, x_0) for s < t: with α = ᾱ_t / ᾱ_s and β = 1 - α, the mean
    is √ᾱ_s β / (1 - ᾱ_t) x_0 + √α (1 - ᾱ_s) / (1 - ᾱ_t) x_t and the variance
    (1 - ᾱ_s) / (1 - ᾱ_t) β."""
    alpha = ab_t / ab_s
    beta = 1.0 - alpha
    mean = math.sqrt(ab_s) * beta / (1 - ab_t) * x0 + math.sqrt(alpha) * (1 - ab_s) / (1 - ab_t) * xt
    return mean, (1 - ab_s) / (1 - ab_t) * beta


def _oracle_chain(steps: int, eta: float, n: int = 2000, timesteps: int = 200):
    spec = tiny_spec(1, 4, 4, 5)
    image = torch.randint(0, spec.levels, (1, *spec.shape), generator=torch.Generator().manual_seed(0))
    x0 = image.double() / (spec.levels - 1) * 2 - 1
    model = Diffusion(DiffusionUNet(spec, channels=8), spec, timesteps=timesteps, sample_steps=steps, eta=eta)
    alpha_bar = alpha_bar_of_linear_betas(timesteps)
    model.ema = Recorded(OracleNoise(x0.float(), alpha_bar))
    final = model.generate(n, torch.Generator().manual_seed(2)).double() * 2 - 1
    chain = model.ema.chain + [(-1, final)]
    return x0, alpha_bar, chain


@pytest.mark.parametrize("steps", [200, 10])
def test_each_ancestral_step_draws_from_the_closed_form_posterior(steps):
    """With the exact noise of a one-image dataset, x_s given x_t (s the next timestep visited) is
    q(x_s | x_t, x_0): residuals from the posterior mean, scaled by its standard deviation, are
    standard normal (mean and variance within 5 standard errors over 2000 x 16 values)."""
    x0, alpha_bar, chain = _oracle_chain(steps, eta=1.0)
    for (t, xt), (s, xs) in zip(chain[:-2], chain[1:-1]):
        mean, var = posterior(x0, xt, float(alpha_bar[t]), float(alpha_bar[s]))
        z = ((xs - mean) / math.sqrt(var)).flatten()
        m = len(z)
        mean_z, var_z = float(z.mean()), float(z.var())
        assert abs(mean_z) < 5 / math.sqrt(m), f"step {t}->{s}: mean off the posterior's by {mean_z:.3g} sd"
        assert abs(var_z - 1) < 5 * math.sqrt(2 / m), f"step {t}->{s}: variance ratio {var_z:.4f}"
    t, xt = chain[-2]  # the last step returns the predicted x_0: exact with the oracle noise
    assert t == 0 and torch.allclose(chain[-1][1], x0.expand_as(xt), atol=1e-4)


@pytest.mark.parametrize("steps", [200, 10])
def test_each_ddim_step_is_the_deterministic_update(steps):
    """eta = 0: x_s = √ᾱ_s x_0 + √(1 - ᾱ_s) ε with ε = (x_t - √ᾱ_t x_0) / √(1 - ᾱ_t), no noise."""
    x0, alpha_bar, chain = _oracle_chain(steps, eta=0.0, n=64)
    for (t, xt), (s, xs) in zip(chain[:-1], chain[1:]):
        ab_t, ab_s = float(alpha_bar[t]), (float(alpha_bar[s]) if s >= 0 else 1.0)
        eps = (xt - math.sqrt(ab_t) * x0) / math.sqrt(1 - ab_t)
        expected = math.sqrt(ab_s) * x0 + math.sqrt(1 - ab_s) * eps
        off = float((xs - expected).abs().max())
        assert off < 1e-4, f"step {t}->{s}: off the DDIM update by {off:.3g}"


class TwoImageNoise(nn.Module):
    """The exact noise of a dataset of two images `a`, `b` in [-1, 1] with weights (p, 1 - p):
    ε = (x_t - √ᾱ E[x_0 | x_t]) / √(1 - ᾱ), E[x_0 | x_t] weighting each image by its posterior."""

    def __init__(self, images: torch.Tensor, p: float, alpha_bar: torch.Tensor):
        super().__init__()
        self.register_buffer("images", images.double())  # [2, C, H, W]
        self.register_buffer("log_prior", torch.tensor([p, 1 - p], dtype=torch.float64).log())
        self.register_buffer("alpha_bar", alpha_bar)

    def forward(self, x, t):
        ab = self.alpha_bar[t].view(-1, 1, 1, 1, 1)
        x64 = x.double()[:, None]  # [n, 1, C, H, W]
        sq = (x64 - ab.sqrt() * self.images[None]).pow(2).flatten(2).sum(2)  # [n, 2]
        w = torch.softmax(self.log_prior - sq / (2 * (1 - ab.view(-1, 1))), dim=1)
        expected = (w[:, :, None, None, None] * self.images[None]).sum(1, keepdim=True)
        return ((x64 - ab.sqrt() * expected) / (1 - ab).sqrt()).squeeze(1).to(x.dtype)


@pytest.mark.parametrize("eta, steps", [(1.0, 100), (0.0, 50)])
def test_samples_of_the_exact_noise_of_two_images_follow_their_proportions(eta, steps):
    """Every sample is one of the two images, and image `a` is drawn with probability 0.3
    (binomial test, p >= 1e-3 over 2000 samples)."""
    spec, n, p = tiny_spec(1, 4, 4, 5), 2000, 0.3
    a = torch.zeros((1, *spec.shape), dtype=torch.uint8)
    b = torch.full((1, *spec.shape), spec.levels - 1, dtype=torch.uint8)
    b[..., 0, :] = 1  # not the mirror image of a: no symmetry to hide a sign error
    images = torch.cat([a, b]).double() / (spec.levels - 1) * 2 - 1
    model = Diffusion(DiffusionUNet(spec, channels=8), spec, timesteps=1000, sample_steps=steps, eta=eta)
    model.ema = TwoImageNoise(images, p, alpha_bar_of_linear_betas(1000))
    samples = model.sample(n, torch.Generator().manual_seed(4))
    is_a = (samples == a).flatten(1).all(1)
    is_b = (samples == b).flatten(1).all(1)
    neither = int((~(is_a | is_b)).sum())
    assert neither == 0, f"{neither} of {n} samples are neither training image"
    count = int(is_a.sum())
    p_value = stats.binomtest(count, n, p).pvalue
    assert p_value >= 1e-3, f"{count} of {n} samples are image a, expected {p * n:.0f} (binomial p = {p_value:.2g})"


def test_sample_steps_visit_a_descending_sub_sequence_from_the_noisiest_timestep():
    spec = tiny_spec(1, 2, 2, 3)
    for steps in (1, 7, 50):
        schedule = Diffusion(DiffusionUNet(spec, channels=8), spec, timesteps=50, sample_steps=steps).timestep_schedule()
        assert len(schedule) == steps and schedule[0] == 49 and all(a > b for a, b in zip(schedule, schedule[1:]))
        assert steps == 1 or schedule[-1] == 0


def test_ema_follows_the_trained_weights():
    spec = tiny_spec(1, 2, 2, 3)
    model = Diffusion(DiffusionUNet(spec, channels=8), spec, ema_decay=0.5)
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.ema.parameters()]
    model.on_train_batch_end(None, None, 0)
    for old, new, trained in zip(before, model.ema.parameters(), model.net.parameters()):
        assert torch.allclose(new, 0.5 * old + 0.5 * trained)


@pytest.mark.parametrize("key, value", [("timesteps", 1), ("sample_steps", 0), ("eta", 1.5), ("ema_decay", 1.0)])
def test_bad_settings_fail_with_one_line_naming_the_key(key, value):
    spec = tiny_spec(1, 2, 2, 3)
    with pytest.raises(ConfigError, match=rf"^model\.module\.{key}="):
        Diffusion(DiffusionUNet(spec, channels=8), spec, **{key: value})


def test_odd_image_sides_fail_at_build_time():
    with pytest.raises(ConfigError, match="even sides"):
        DiffusionUNet(tiny_spec(1, 3, 3, 2))
