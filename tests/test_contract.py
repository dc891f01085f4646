"""Every model config in conf/model/ passes the same contract checks a plugin author runs."""

import pytest
from conftest import REPO_ROOT, compose_config

from bench.data import ImageDataModule
from bench.models.build import build_model
from bench.testing import check_checkpoint_round_trip, check_sample_contract

MODELS = sorted(p.stem for p in (REPO_ROOT / "bench" / "conf" / "model").glob("*.yaml"))


@pytest.fixture(scope="module")
def digits():
    return ImageDataModule("digits")


@pytest.mark.parametrize("name", MODELS)
def test_default_models_keep_the_interface_contract(name, digits):
    cfg = compose_config([f"model={name}", "seed=0"]).model
    model = build_model(cfg, digits.spec)
    if getattr(model, "fits_in_closed_form", False):
        model.fit_closed_form(digits.train_images)
    # An untrained GAN may quantize every latent to the same image; sampled likelihoods never do.
    check_sample_contract(model, expect_variety=model.likelihood != "none")
    check_checkpoint_round_trip(model, build_model(cfg, digits.spec))
    if model.likelihood != "none":
        bpd = model.nll_bits_per_dim(digits.val_images[:8])
        assert bpd.shape == (8,) and bool((bpd > 0).all())


def test_default_families_are_parameter_matched(digits):
    families = ("cnn_decoder", "gan", "rnn", "gpt")
    counts = {f: build_model(compose_config([f"model={f}"]).model, digits.spec).num_parameters("sampling")
              for f in families}
    assert max(counts.values()) <= 2 * min(counts.values()), counts
