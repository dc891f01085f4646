"""The pixel GPT family: KV cache, likelihood, sampling path, memorization, training, checkpoints, configs."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch

from bench.core.errors import ConfigError
from bench.data import ImageDataModule
from bench.models.build import build_model
from bench.models.gpt import PixelGPT, PixelGPTNet
from bench.testing import check_checkpoint_round_trip, check_memorizes_one_image, check_sample_contract
from tests.helpers.configs import compose_config

torch.set_num_threads(1)


def tiny(spec, **kwargs) -> PixelGPT:
    torch.manual_seed(0)
    return PixelGPT(PixelGPTNet(spec, d_model=32, layers=2, heads=4, dropout=0.0), spec, **kwargs)


def test_cached_and_uncached_next_token_logits_agree_over_a_whole_sequence(small_bars):
    model = tiny(small_bars.spec).eval()
    with torch.no_grad():
        for p in model.net.parameters():  # larger weights than the init: a test that can fail
            p.normal_(0, 0.3)
        tokens = torch.randint(0, small_bars.spec.levels + 1, (3, small_bars.spec.dims))
        full = model.net(tokens)
        cache = model.net.new_cache(3)
        stepped = torch.stack(
            [model.net(tokens[:, t : t + 1], cache, start=t)[:, 0] for t in range(tokens.shape[1])], dim=1
        )
        # Chunks of several tokens (a prefill, then one after a prefix) agree with single steps.
        cache = model.net.new_cache(3)
        chunks = [
            model.net(tokens[:, :10], cache, start=0),
            model.net(tokens[:, 10:15], cache, start=10),
            model.net(tokens[:, 15:16], cache, start=15),
        ]
    torch.testing.assert_close(stepped, full, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.cat(chunks, dim=1), full[:, :16], atol=1e-5, rtol=0)


def test_sampling_with_and_without_cache_draws_the_same_images(small_bars):
    model = tiny(small_bars.spec)
    cached = model.sample(4, torch.Generator().manual_seed(5))
    model.kv_cache = False
    assert torch.equal(cached, model.sample(4, torch.Generator().manual_seed(5)))


def test_teacher_forced_likelihood_equals_stepwise_sampling_path(small_bars):
    model = tiny(small_bars.spec).double().eval()
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
        model, PixelGPT(PixelGPTNet(small_bars.spec, d_model=32, layers=2, heads=4, dropout=0.0), small_bars.spec)
    )


def test_default_config_builds_with_matched_parameter_count(small_bars):
    model = build_model(compose_config(["model=gpt"]).model, ImageDataModule(name="digits").spec)
    assert isinstance(model, PixelGPT) and model.likelihood == "exact"
    assert (model.temperature, model.top_k, model.kv_cache) == (1.0, None, True)
    assert 300_000 <= model.num_parameters("sampling") <= 700_000


@pytest.mark.parametrize(
    "key, value, expected", [("levels", 3, "levels"), ("max_positions", 32, "max_positions"), ("heads", 5, "heads")]
)
def test_config_the_data_cannot_fit_fails_at_build_time(small_bars, key, value, expected):
    cfg = compose_config(["model=gpt"]).model
    cfg.net[key] = value
    with pytest.raises(ConfigError, match=f"model.net.{expected}"):
        build_model(cfg, small_bars.spec)  # 4 levels, 64 tokens


@pytest.mark.slow
def test_digits_test_bits_per_dim_after_fixed_samples_seen(tmp_path):
    """The default preset through the training loop (cosine lr, best checkpoint by validation),
    12,000 training images seen: test bits/dim < 2.3 (independent pixels: 2.44)."""
    from bench.run.fit import fit

    cfg = compose_config(["model=gpt", "budget=samples", "budget.value=12000", "logger=none"])
    pl.seed_everything(0, verbose=False)
    dm = ImageDataModule(name="digits", batch_size=cfg.model.batch_size)
    model = build_model(cfg.model, dm.spec)
    fit(model, dm, cfg, tmp_path, None, [], False)
    model.eval()
    with torch.no_grad():
        bpd = model.nll_bits_per_dim(dm.test_images).mean().item()
    assert bpd < 2.3
