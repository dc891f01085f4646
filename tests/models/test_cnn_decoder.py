import pytorch_lightning as pl
import torch

from bench.data import ImageDataModule
from bench.models.build import build_model
from bench.models.cnn_decoder import VAE
from bench.testing import check_sample_contract


def _vae(spec, **net):
    return build_model(
        {
            "family": "cnn_decoder",
            "module": {"lr": 3e-3},
            "net": {"_target_": "bench.models.cnn_decoder.ConvVAENet", "latent_dim": 4, "hidden": 8, **net},
        },
        spec,
    )


def test_vae_loss_falls_on_procedural_data():
    pl.seed_everything(0)
    dm = ImageDataModule("procedural", batch_size=64, val_size=64, test_size=64)
    model = _vae(dm.spec)
    x = dm.val_images
    before = model.nll_bits_per_dim(x).mean().item()
    trainer = pl.Trainer(
        max_steps=60,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=dm)
    after = model.nll_bits_per_dim(x).mean().item()
    assert after < 0.7 * before


def test_sample_shape_dtype_range_and_determinism():
    dm = ImageDataModule("digits")
    model = _vae(dm.spec)
    check_sample_contract(model, n=37)
    a = model.sample(37, torch.Generator().manual_seed(3))
    # It samples from the decoder distribution, not its mode: untrained decoders give varied pixels.
    assert a.float().std() > 0


def test_iwae_bound_is_tighter_than_elbo_on_average():
    torch.manual_seed(0)
    dm = ImageDataModule("digits")
    model = _vae(dm.spec)
    x = dm.test_images[:64]
    elbo = torch.stack([model.nll_bits_per_dim(x) for _ in range(8)]).mean()
    iwae = model.iwae_bits_per_dim(x, k=32).mean()
    assert isinstance(model, VAE) and model.likelihood == "bound"
    assert iwae <= elbo + 1e-4
