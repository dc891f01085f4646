"""Every model config passes the contract kit a plugin author runs, the kit runs exactly the
checks that apply, and it fails with a sentence on models broken on purpose."""

import pytest
import torch

from bench.models import gpt
from bench.models.build import build_model
from bench.models.gpt import PixelGPT, PixelGPTNet
from bench.testing import (
    check_checkpoint_round_trip,
    check_conditional_samples_follow_likelihood,
    check_guidance_zero_is_plain_sampling,
    check_labels_honoured,
    check_likelihood_normalized,
    check_memorizes_one_image,
    check_model,
    check_model_config,
    check_sample_contract,
    check_samples_follow_likelihood,
    tiny_spec,
)
from bench.testing.kit import check_bench_train
from tests.helpers import REPO_ROOT
from tests.helpers.configs import compose_config
from tests.helpers.free_logits import Logits, ToyPixels

ALL_MODELS = sorted(p.stem for p in (REPO_ROOT / "bench" / "conf" / "model").glob("*.yaml"))
#: each family's default config; the dataset-sized variants (`<family>_mnist`, ...) change only
#: sizes, and tests/models/test_large_images.py builds and scores them at their datasets' shapes
MODELS = [name for name in ALL_MODELS if compose_config([f"model={name}"]).model.family == name]
EVERY_MODEL = ["sample contract", "checkpoint round trip", "samples vary with the generator"]
EXPECTED = {  # the checks each model must get, by likelihood kind and training style
    "rnn": EVERY_MODEL
    + [
        "likelihood sums to 1",
        "bits/dim finite and below uniform after a few steps",
        "samples follow the likelihood",
        "training loss falls",
        "memorizes one image",
    ],
    "independent_pixels": EVERY_MODEL
    + ["likelihood sums to 1", "bits/dim finite and below uniform after a few steps", "samples follow the likelihood"],
    "cnn_decoder": EVERY_MODEL
    + ["likelihood sums to at most 1", "bits/dim finite and below uniform after a few steps", "training loss falls"],
    "gan": EVERY_MODEL,
    "copier": EVERY_MODEL,
}
EXPECTED["gpt"] = EXPECTED["rnn"]
CONDITIONAL = [
    "conditional: sample contract with labels",
    "conditional: samples vary with the generator",
    "conditional: samples follow their labels",
]
EXPECTED_CONDITIONAL = {  # the checks a family declaring supports_conditional gets in conditional mode
    "rnn": CONDITIONAL
    + [
        "conditional: likelihood sums to 1 per label",
        "conditional: samples follow the likelihood per label",
        "conditional: guidance 0 equals plain sampling",
    ],
    "independent_pixels": CONDITIONAL
    + ["conditional: likelihood sums to 1 per label", "conditional: samples follow the likelihood per label"],
    "copier": CONDITIONAL,
    "cnn_decoder": CONDITIONAL + ["conditional: likelihood sums to at most 1 per label"],
    # trained by its own loop: the kit does not fit it
    "gan": ["conditional: sample contract with labels", "conditional: samples vary with the generator"],
}
EXPECTED_CONDITIONAL["gpt"] = EXPECTED_CONDITIONAL["rnn"]


@pytest.mark.parametrize("name", MODELS)
def test_every_model_config_passes_exactly_its_checks(name):
    assert check_model_config(name) == ["network declared"] + EXPECTED[name] + EXPECTED_CONDITIONAL.get(name, [])


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_config_completes_a_smoke_bench_train_run(name, tmp_path):
    assert check_bench_train(name, tmp_path)["model"] == name


@pytest.mark.parametrize("name", MODELS)
def test_default_models_keep_the_interface_contract_on_digits(name, digits):
    cfg = compose_config([f"model={name}", "seed=0"]).model
    model = build_model(cfg, digits.spec)
    if getattr(model, "fits_in_closed_form", False):
        model.fit_closed_form(digits.train_images)
    check_sample_contract(model, expect_variety=model.likelihood != "none")
    check_checkpoint_round_trip(model, build_model(cfg, digits.spec))


def test_default_families_are_parameter_matched(digits):
    families = ("cnn_decoder", "gan", "rnn", "gpt")
    counts = {
        f: build_model(compose_config([f"model={f}"]).model, digits.spec).num_parameters("sampling") for f in families
    }
    assert max(counts.values()) <= 2 * min(counts.values()), counts


# ---- the kit on models broken on purpose -----------------------------------------------------
class Unnormalized(ToyPixels):
    """Every pixel's probabilities sum to exp(0.01): each 2x2 image's to exp(0.04) = 1.0408."""

    def log_probs(self):
        return super().log_probs() + 0.01


class GlobalRngSampler(ToyPixels):
    def generate(self, n, generator=None):
        return super().generate(n, None)


class UniformSampler(ToyPixels):
    """Scores with its logits but samples every level uniformly."""

    def generate(self, n, generator=None):
        return torch.randint(0, self.spec.levels, (n, *self.spec.shape), generator=generator)


def _skewed(cls, spec=None):
    spec = spec or tiny_spec()
    model = cls(Logits(spec), spec)
    with torch.no_grad():
        model.net.logits.copy_(torch.randn(model.net.logits.shape, generator=torch.Generator().manual_seed(0)) * 2)
    return model


def test_free_pixel_logits_pass_every_check_with_the_defaults():
    assert check_model(lambda spec: ToyPixels(Logits(spec), spec)) == EXPECTED["rnn"]


def test_memorization_with_default_settings_passes_free_logits_on_a_digits_image(digits):
    check_memorizes_one_image(ToyPixels(Logits(digits.spec), digits.spec), digits.train_images[:1])


def test_likelihood_not_summing_to_one_fails_with_the_sum():
    with pytest.raises(AssertionError, match=r"exp\(-nll\) sums to 1\.0408\d+ over the 81 images .* sums to 1$"):
        check_likelihood_normalized(_skewed(Unnormalized))
    with pytest.raises(AssertionError, match="contract check 'likelihood sums to 1' .*failed: exp"):
        check_model(lambda spec: Unnormalized(Logits(spec), spec))


def test_sampler_ignoring_its_generator_fails():
    with pytest.raises(AssertionError, match="must draw from its generator, not the global RNG"):
        check_sample_contract(_skewed(GlobalRngSampler))


def test_samples_not_following_the_likelihood_fail_with_the_distance():
    with pytest.raises(
        AssertionError, match=r"samples do not follow the likelihood: chi-square p = .* total variation 0\.\d+"
    ):
        check_samples_follow_likelihood(_skewed(UniformSampler))
    check_samples_follow_likelihood(_skewed(ToyPixels))  # the same scores with a faithful sampler pass


def test_memorization_failure_says_what_was_reached():
    spec = tiny_spec()
    frozen = ToyPixels(Logits(spec), spec)
    with pytest.raises(AssertionError, match=r"after 50 steps the loss is .* bits/dim \(image probability 0\.\d+\)"):
        check_memorizes_one_image(frozen, torch.zeros(1, *spec.shape, dtype=torch.uint8), lr=1e-4, max_steps=50)


# ---- conditional checks on models broken on purpose -----------------------------------------------
class LabelBlindSampler(PixelGPT):
    """Scores given the label but samples every image as class 0."""

    def generate(self, n, generator=None, labels=None):
        return super().generate(n, generator, labels=torch.zeros_like(labels))


class LabelBlindScorer(PixelGPT):
    """Ignores the label when scoring: p(x | y) = p(x | no label)."""

    def nll_bits_per_dim(self, x, labels=None):
        return super().nll_bits_per_dim(x, None if labels is None else torch.full_like(labels, self.null_label))


class GuidanceFixedAtBuild(PixelGPT):
    """Reads its guidance weight once, when built, so the scoring options cannot turn it off."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.built_guidance = 2.0

    def generate(self, n, generator=None, labels=None):
        saved, self.guidance = self.guidance, self.built_guidance
        try:
            return super().generate(n, generator, labels)
        finally:
            self.guidance = saved


def _conditional_gpt(cls):
    spec = tiny_spec(num_classes=2)
    torch.manual_seed(0)
    return cls(PixelGPTNet(spec, d_model=32, num_classes=2), spec, conditional=True)


def test_a_conditional_model_passes_every_check_with_plain_check_model():
    ran = check_model(
        lambda spec: PixelGPT(PixelGPTNet(spec, d_model=32, num_classes=spec.num_classes), spec, conditional=True)
    )
    assert ran == EXPECTED["gpt"] + EXPECTED_CONDITIONAL["gpt"]


def test_sampler_ignoring_labels_fails_with_the_counts():
    with pytest.raises(AssertionError, match=r"do not follow their labels: of 64 samples per label, \[\d+, 0\]"):
        check_labels_honoured(_conditional_gpt(LabelBlindSampler))


def test_scorer_ignoring_labels_fails_with_the_probabilities_reached():
    with pytest.raises(AssertionError, match=r"did not learn to tell the classes apart: after 200 steps p\(prototype"):
        check_labels_honoured(_conditional_gpt(LabelBlindScorer), max_steps=200)


def test_guidance_the_scoring_options_cannot_turn_off_fails():
    with pytest.raises(AssertionError, match=r"samples of label 0 do not follow the conditional likelihood"):
        check_conditional_samples_follow_likelihood(_conditional_gpt(GuidanceFixedAtBuild))
    check_conditional_samples_follow_likelihood(_conditional_gpt(PixelGPT))  # the same model, guidance honoured


def test_guidance_that_does_not_reduce_to_conditional_sampling_fails(monkeypatch):
    # the streams swapped: the guided path draws from the null-label stream as w -> 0
    swapped = lambda labels, null: torch.cat([torch.full_like(labels, null), labels])  # noqa: E731
    monkeypatch.setattr(gpt, "with_null_stream", swapped)
    with pytest.raises(AssertionError, match=r"guided samples at w = 1e-06 differ .* in \d+ of 32 images"):
        check_guidance_zero_is_plain_sampling(_conditional_gpt(PixelGPT))
