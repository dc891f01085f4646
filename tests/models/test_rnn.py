"""The pixel RNN family: likelihood, sampling path, memorization, training, checkpoints, configs."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch

from bench.core.errors import ConfigError
from bench.data import ImageDataModule
from bench.models.build import build_model
from bench.models.rnn import PixelRNN, PixelRNNNet
from bench.testing import check_checkpoint_round_trip, check_memorizes_one_image, check_sample_contract
from tests.helpers.configs import compose_config

torch.set_num_threads(1)


def tiny(spec, cell: str = "lstm", **kwargs) -> PixelRNN:
    torch.manual_seed(0)
    return PixelRNN(PixelRNNNet(spec, hidden=32, layers=2, embed_dim=16, cell=cell), spec, **kwargs)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_teacher_forced_likelihood_equals_stepwise_sampling_path(small_bars, cell):
    model = tiny(small_bars.spec, cell).double().eval()
    x = small_bars.val_images[:6]
    teacher_forced = -model.nll_bits_per_dim(x) * small_bars.spec.dims * math.log(2.0)
    stepwise = model.stepwise_log_prob(x)
    torch.testing.assert_close(teacher_forced, stepwise, atol=1e-5, rtol=0)


def test_samples_shape_dtype_range_and_seeded_determinism(small_bars):
    check_sample_contract(tiny(small_bars.spec))


def test_top_k_one_is_greedy_whatever_the_seed(small_bars):
    model = tiny(small_bars.spec, top_k=1)
    a = model.sample(3, torch.Generator().manual_seed(1))
    b = model.sample(3, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and torch.equal(a[0], a[1])


def test_memorizes_one_image_and_samples_it_back():
    dm = ImageDataModule(name="digits")
    check_memorizes_one_image(tiny(dm.spec), dm.train_images[:1])


def test_training_lowers_loss_and_checkpoint_reloads_identically(small_bars):
    model = tiny(small_bars.spec, lr=1e-2)
    before = model.nll_bits_per_dim(small_bars.val_images).mean().item()
    trainer = pl.Trainer(
        max_steps=30,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=small_bars)
    after = model.nll_bits_per_dim(small_bars.val_images).mean().item()
    assert after < before - 0.3

    check_checkpoint_round_trip(
        model, PixelRNN(PixelRNNNet(small_bars.spec, hidden=32, layers=2, embed_dim=16), small_bars.spec)
    )


def test_default_config_builds_with_matched_parameter_count_and_flops(small_bars):
    model = build_model(compose_config(["model=rnn"]).model, ImageDataModule(name="digits").spec)
    assert isinstance(model, PixelRNN) and model.likelihood == "exact"
    assert 300_000 <= model.num_parameters("sampling") <= 700_000
    sample_flops = model.analytic_flops("sample")
    # Each generated pixel costs at least two multiply-adds per recurrent weight.
    assert sample_flops >= 2 * model.net.rnn.weight_hh_l0.numel() * 64
    assert model.analytic_flops("train") == pytest.approx(3 * sample_flops)


@pytest.mark.parametrize(
    "key, value, expected",
    [("levels", 3, "levels"), ("max_positions", 32, "max_positions"), ("cell", "transformer", "cell")],
)
def test_config_the_data_cannot_fit_fails_at_build_time(small_bars, key, value, expected):
    cfg = compose_config(["model=rnn"]).model
    cfg.net[key] = value
    with pytest.raises(ConfigError, match=f"model.net.{expected}"):
        build_model(cfg, small_bars.spec)  # 4 levels, 64 tokens


@pytest.mark.slow
def test_digits_test_bits_per_dim_after_fixed_samples_seen(tmp_path):
    """The default preset through the training loop (cosine lr, best checkpoint by validation),
    12,000 training images seen: test bits/dim < 2.3 (independent pixels: 2.44)."""
    from bench.run.fit import fit

    cfg = compose_config(["model=rnn", "budget=samples", "budget.value=12000", "logger=none"])
    pl.seed_everything(0, verbose=False)
    dm = ImageDataModule(name="digits", batch_size=cfg.model.batch_size)
    model = build_model(cfg.model, dm.spec)
    fit(model, dm, cfg, tmp_path, None, [], False)
    model.eval()
    with torch.no_grad():
        bpd = model.nll_bits_per_dim(dm.test_images).mean().item()
    assert bpd < 2.3
