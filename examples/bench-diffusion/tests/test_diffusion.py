"""The diffusion family: bench's contract kit, the sampler's arithmetic, and its config checks."""

import pytest
import torch
from torch import nn

from bench.errors import ConfigError
from bench.testing import check_model_config, tiny_spec
from bench_diffusion.model import Diffusion
from bench_diffusion.net import DiffusionUNet


def test_passes_the_contract_kit_and_a_smoke_bench_train_run(tmp_path):
    ran = check_model_config("diffusion", results_dir=tmp_path)
    assert ran == ["sample contract", "checkpoint round trip", "training loss falls", "bench-train smoke run"]


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
