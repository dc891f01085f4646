"""The GAN family: two optimizers, EMA sampling, determinism, checkpoints, bad input."""

from __future__ import annotations

import copy

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from bench.core.errors import ConfigError
from bench.data import ImageDataModule, to_unit
from bench.data.spec import DatasetSpec
from bench.models.build import build_model
from bench.models.gan import GAN, GANNet
from bench.pipeline.train_task import train
from tests.helpers.configs import compose_config, tiny_overrides

CONF = "bench/conf/model/gan.yaml"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_gan(spec: DatasetSpec, seed: int = 0, **module) -> GAN:
    torch.manual_seed(seed)
    net = GANNet(spec, latent_dim=16, g_hidden=8, d_hidden=8)
    return GAN(net, spec, **{"lr": 2e-3, "ema_decay": 0.9, **module})


def fit(model: GAN, dm: ImageDataModule, batches: int, callbacks=(), **trainer) -> pl.Trainer:
    """Trains for `batches` batches (whole epochs where `batches` exceeds one)."""
    pl.seed_everything(0)
    per_epoch = len(dm.train_images) // dm.batch_size
    epochs, limit = (batches // per_epoch, 1.0) if batches > per_epoch else (1, batches)
    t = pl.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        limit_train_batches=limit,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
        **trainer,
    )
    t.fit(model, datamodule=dm)
    return t


def mean_image_gap(model: GAN, dm: ImageDataModule) -> float:
    """Mean absolute gap between the samples' and the training data's per-pixel mean image."""
    levels = dm.spec.levels
    fake = to_unit(model.sample(512, torch.Generator().manual_seed(0)), levels).mean(0)
    return (fake - to_unit(dm.train_images, levels).mean(0)).abs().mean().item()


class RecordRawGenerator(pl.Callback):
    """Keeps a copy of the raw generator's weights after every training batch."""

    def __init__(self):
        self.snapshots: list[list[torch.Tensor]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.snapshots.append([p.detach().clone() for p in module.net.generator.parameters()])


def test_training_moves_both_networks_and_samples_towards_the_data(bars_batch_32):
    model = tiny_gan(bars_batch_32.spec)
    g0 = copy.deepcopy(model.net.generator.state_dict())
    d0 = copy.deepcopy(model.net.discriminator.state_dict())
    gap_before = mean_image_gap(model, bars_batch_32)
    trainer = fit(model, bars_batch_32, batches=120)
    assert trainer.global_step == 2 * 120  # one generator and one critic step per batch
    for before, net in ((g0, model.net.generator), (d0, model.net.discriminator)):
        moved = [k for k, v in net.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
        assert moved, f"{type(net).__name__} never stepped"
    # Bars sit on a dark ground; an untrained generator paints mid-grey everywhere.
    assert mean_image_gap(model, bars_batch_32) < 0.5 * gap_before


def test_critic_steps_per_generator_step(bars_batch_32):
    model = tiny_gan(bars_batch_32.spec, d_steps=2, loss="non_saturating")
    trainer = fit(model, bars_batch_32, batches=6)
    assert trainer.global_step == 6 + 3


def test_ema_is_the_hand_computed_average_of_raw_weights(bars_batch_32):
    decay = 0.7
    model = tiny_gan(bars_batch_32.spec, ema_decay=decay)
    ema = [p.detach().clone() for p in model.net.generator.parameters()]
    recorder = RecordRawGenerator()
    fit(model, bars_batch_32, batches=4, callbacks=[recorder])
    for raw in recorder.snapshots:
        ema = [decay * e + (1 - decay) * r for e, r in zip(ema, raw)]
    for expected, got in zip(ema, model.generator_ema.parameters()):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert not all(torch.equal(e, r) for e, r in zip(ema, recorder.snapshots[-1]))
    for e, r in zip(model.generator_ema.buffers(), model.net.generator.buffers()):
        assert torch.equal(e, r)


def test_sample_uses_the_ema_weights(bars_batch_32):
    model = tiny_gan(bars_batch_32.spec)
    fit(model, bars_batch_32, batches=5)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    before = model.sample(64, g())
    with torch.no_grad():
        for p in model.net.generator.parameters():
            p.add_(torch.randn_like(p))
    assert torch.equal(model.sample(64, g()), before)
    with torch.no_grad():
        for p in model.generator_ema.parameters():
            p.add_(torch.randn_like(p))
    assert not torch.equal(model.sample(64, g()), before)


def test_samples_are_levels_and_deterministic_under_a_generator(bars_batch_32):
    model = tiny_gan(bars_batch_32.spec)
    model.sample_batch_size = 16  # several chunks must continue one random stream
    a = model.sample(37, torch.Generator().manual_seed(7))
    assert a.shape == (37, *bars_batch_32.spec.shape) and a.dtype == torch.uint8 and a.device.type == "cpu"
    assert int(a.max()) < bars_batch_32.spec.levels
    torch.manual_seed(11)
    expected_global = torch.rand(3)
    torch.manual_seed(11)
    b = model.sample(37, torch.Generator().manual_seed(7))
    assert torch.equal(torch.rand(3), expected_global), "sampling touched the global RNG"
    assert torch.equal(a, b)
    assert not torch.equal(a, model.sample(37, torch.Generator().manual_seed(8)))
    assert model.training  # sample() restores the mode it found


def test_checkpoint_round_trip_gives_identical_samples(bars_batch_32, tmp_path):
    model = tiny_gan(bars_batch_32.spec)
    trainer = fit(model, bars_batch_32, batches=5)
    path = tmp_path / "gan.ckpt"
    trainer.save_checkpoint(path)
    restored = tiny_gan(bars_batch_32.spec, seed=1)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert not torch.equal(restored.sample(64, g()), model.sample(64, g()))
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    assert any(k.startswith("generator_ema.") for k in state)
    restored.load_state_dict(state)
    assert torch.equal(restored.sample(64, g()), model.sample(64, g()))


def test_parameter_counts_and_default_size():
    spec = ImageDataModule(name="digits").spec
    model = build_model(OmegaConf.load(CONF), spec)
    g = sum(p.numel() for p in model.net.generator.parameters())
    d = sum(p.numel() for p in model.net.discriminator.parameters())
    assert model.num_parameters("sampling") == g
    assert model.num_parameters("training") == g + d
    assert 300_000 <= g <= 700_000
    assert model.likelihood == "none" and model.selection_metric is None
    opt_g, opt_d = model.configure_optimizers()
    assert {id(p) for p in opt_g.param_groups[0]["params"]} == {id(p) for p in model.net.generator.parameters()}
    assert all("initial_lr" in group for opt in (opt_g, opt_d) for group in opt.param_groups)


def test_training_loss_reaches_both_networks(bars_batch_32):
    """`training_loss` (what the FLOP counter probes) runs one step's passes through both players."""
    model = tiny_gan(bars_batch_32.spec)
    model.training_loss(bars_batch_32.train_images[:8]).backward()
    for net in (model.net.generator, model.net.discriminator):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_bad_input_fails_at_build_time():
    cfg = OmegaConf.load(CONF)
    odd = DatasetSpec(
        name="odd", channels=1, height=6, width=8, levels=4, split_seed=0, train_size=10, val_size=1, test_size=1
    )
    with pytest.raises(ConfigError, match="divisible by 4"):
        build_model(cfg, odd)
    spec = DatasetSpec(
        name="ok", channels=3, height=12, width=16, levels=256, split_seed=0, train_size=10, val_size=1, test_size=1
    )
    assert build_model(cfg, spec).sample(2).shape == (2, 3, 12, 16)
    bad_loss = OmegaConf.merge(cfg, {"module": {"loss": "wasserstein"}})
    with pytest.raises(ConfigError, match="model.module.loss"):
        build_model(bad_loss, spec)
    with pytest.raises(ConfigError, match="model.net"):
        GAN(None, spec)


def test_runs_through_the_training_entry_point(tmp_path):
    record = train(compose_config(tiny_overrides(tmp_path, "model=gan", "logger=none")))
    assert record["status"] == "completed", record["message"]
    assert record["budget"]["stopped_by"] == "samples"
    assert record["training"]["optimizer_steps"] == 2 * record["training"]["samples_seen"] // 64
    assert record["metrics"]["bits_per_dim"] is None and record["metrics"]["fid"] >= 0


@pytest.mark.slow
def test_digits_fid_after_fixed_samples_seen(tmp_path):
    """The default preset through `bench-train`'s function, 64,000 training images seen: FID
    (classifier features, test split) within 3x the data floor, samples spread over the data
    (recall) and not copied from it. Collapsed or untrained generators score far above 10x."""
    record = train(
        compose_config(
            [
                f"results_dir={tmp_path}",
                "model=gan",
                "budget=samples",
                "budget.value=64000",
                "logger=none",
                "progress=none",
                "threads=1",
            ]
        )
    )
    assert record["status"] == "completed", record["message"]
    metrics, floor = record["metrics"], record["data_floor"]
    assert metrics["fid"] < 3 * floor["fid"]
    assert metrics["recall"] > 0.6
    assert metrics["memorization"] < 0.15
