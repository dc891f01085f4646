"""Every family at real-dataset sizes: 28x28 grey (784 tokens) and 32x32 colour (3,072 tokens),
256 levels — tiny networks on random uint8 data, so the shapes, vocabularies and sampling paths
are exercised without the real datasets."""

from __future__ import annotations

import itertools
import math

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from bench.core.errors import ConfigError
from bench.data.spec import DatasetSpec
from bench.models import cnn_decoder
from bench.models.base import GenerativeModule
from bench.models.baselines import IndependentPixels, TrainingSetCopier
from bench.models.build import build_model
from bench.models.cnn_decoder import VAE, ConvVAENet
from bench.models.gan import GAN, GANNet
from bench.models.gpt import PixelGPT, PixelGPTNet
from bench.models.pixel_tokens import draw, to_tokens
from bench.models.rnn import PixelRNN, PixelRNNNet
from bench.testing import check_sample_contract
from tests.helpers import REPO_ROOT
from tests.helpers.configs import compose_config

torch.set_num_threads(1)

GREY = DatasetSpec(
    "grey28", channels=1, height=28, width=28, levels=256, split_seed=0, train_size=8, val_size=2, test_size=2
)
COLOUR = DatasetSpec(
    "colour32", channels=3, height=32, width=32, levels=256, split_seed=0, train_size=8, val_size=2, test_size=2
)
CONF = REPO_ROOT / "bench" / "conf"
FAMILIES = ("cnn_decoder", "gan", "rnn", "gpt", "independent_pixels", "copier")


def random_images(spec: DatasetSpec, n: int, seed: int = 0) -> torch.Tensor:
    """uint8 `[n, C, H, W]` uniform over the levels."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, spec.levels, (n, *spec.shape), generator=g, dtype=torch.uint8)


def tiny(family: str, spec: DatasetSpec) -> GenerativeModule:
    """The smallest network of each family that still has every layer kind of the real one."""
    torch.manual_seed(0)
    if family == "cnn_decoder":
        return VAE(ConvVAENet(spec, latent_dim=4, hidden=4), spec)
    if family == "gan":
        stages = 3 if spec.height == 32 else 2  # 4x4 -> 32x32 as in DCGAN; 7x7 -> 28x28
        return GAN(GANNet(spec, latent_dim=8, g_hidden=4, d_hidden=4, stages=stages), spec)
    if family == "rnn":
        return PixelRNN(PixelRNNNet(spec, hidden=16, layers=1, embed_dim=8, dropout=0.0), spec)
    if family == "gpt":
        return PixelGPT(PixelGPTNet(spec, d_model=16, layers=1, heads=2), spec)
    if family == "independent_pixels":
        return IndependentPixels(None, spec)
    return TrainingSetCopier(None, spec)


@pytest.mark.parametrize("spec", [GREY, COLOUR], ids=["28x28x1", "32x32x3"])
@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_trains_a_few_steps_and_samples(family, spec):
    model = tiny(family, spec)
    x = random_images(spec, 8)
    if getattr(model, "fits_in_closed_form", False):
        model.fit_closed_form(x)
    else:
        before = [p.detach().clone() for p in model.net.parameters()]
        loader = DataLoader(TensorDataset(x, torch.zeros(len(x), dtype=torch.long)), batch_size=4)
        pl.Trainer(
            max_steps=2,
            accelerator="cpu",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        ).fit(model, loader)
        moved = [not torch.equal(b, p) for b, p in zip(before, model.net.parameters())]
        assert sum(moved) >= len(moved) // 2, f"{family}: training left most parameters unchanged"
    check_sample_contract(model, n=2)
    if model.likelihood != "none":
        bpd = model.eval().nll_bits_per_dim(random_images(spec, 2, seed=1))
        # unseen uniform images cost a normalized model at least log2(256) = 8 bits/dim in expectation,
        # and a model two steps from its near-uniform start not much more: measured 8.00 to 8.06
        # (a bound 8.00, the fitted per-pixel counts 8.05); nats would give 5.5, a sum over dims 6,000
        assert bpd.shape == (2,) and bool(((bpd > 7.9) & (bpd < 8.25)).all()), f"{family}: {bpd.tolist()} bits/dim"


@pytest.mark.parametrize("family", ["rnn", "gpt"])
def test_autoregressive_vocabulary_is_the_levels_and_sampling_feeds_one_token_a_step(family):
    model = tiny(family, COLOUR)
    assert model.net.levels == 256 and model.net.head.out_features == 256
    lengths: list[int] = []
    model.net.register_forward_hook(lambda module, args, out: lengths.append(args[0].shape[1]))
    model.sample(2, torch.Generator().manual_seed(0))
    # one net call per sub-pixel, each with one new token: the prefix is never re-run
    assert lengths == [1] * COLOUR.dims


def test_tokens_are_sub_pixels_in_raster_order_red_green_blue_per_pixel():
    x = random_images(COLOUR, 2)
    tokens = to_tokens(x)
    assert tokens.shape == (2, 3 * 32 * 32)
    assert torch.equal(tokens[:, :3], x[:, :, 0, 0].long())  # R, G, B of pixel (0, 0)
    assert torch.equal(tokens[:, 3:6], x[:, :, 0, 1].long())  # then its right neighbour
    assert torch.equal(tokens[:, 3 * 32 : 3 * 32 + 3], x[:, :, 1, 0].long())  # then the next row


def test_gpt_cached_and_uncached_logits_agree_at_784_positions():
    torch.manual_seed(0)
    net = PixelGPTNet(GREY, d_model=16, layers=2, heads=2).eval()
    with torch.no_grad():
        for p in net.parameters():  # larger weights than the init: a test that can fail
            p.normal_(0, 0.3)
        tokens = torch.randint(0, GREY.levels + 1, (2, GREY.dims))
        full = net(tokens)
        cache = net.new_cache(2)
        stepped = torch.stack([net(tokens[:, t : t + 1], cache, start=t)[:, 0] for t in range(GREY.dims)], dim=1)
    assert full.shape == (2, 784, 256)
    torch.testing.assert_close(stepped, full, atol=1e-5, rtol=0)


def test_vae_decoder_is_a_distribution_summing_to_one_over_every_image():
    spec = DatasetSpec(
        "binary4", channels=1, height=4, width=4, levels=2, split_seed=0, train_size=8, val_size=2, test_size=2
    )
    model = tiny("cnn_decoder", spec).eval()
    every_image = torch.tensor(list(itertools.product((0, 1), repeat=spec.dims)), dtype=torch.uint8)
    every_image = every_image.view(-1, *spec.shape)  # all 2**16 binary 4x4 images
    with torch.no_grad():
        logits = model.net.decode(torch.randn(1, model.net.latent_dim))
        log_px = model._log_px(logits.expand(len(every_image), *logits.shape[1:]), every_image)
    assert math.isclose(torch.logsumexp(log_px.double(), 0).exp().item(), 1.0, abs_tol=1e-5)


def test_vae_bound_and_samples_do_not_depend_on_the_decoding_chunk(monkeypatch):
    model = tiny("cnn_decoder", COLOUR).eval()
    x = random_images(COLOUR, 3)
    torch.manual_seed(1)
    whole = model.iwae_bits_per_dim(x, k=4)
    samples = model.sample(3, torch.Generator().manual_seed(2))
    monkeypatch.setattr(cnn_decoder, "LOGITS_PER_CHUNK", model.logits_per_image)  # one image a chunk
    torch.manual_seed(1)
    torch.testing.assert_close(model.iwae_bits_per_dim(x, k=4), whole, atol=1e-5, rtol=0)
    chunked = model.sample(3, torch.Generator().manual_seed(2))
    assert torch.equal(chunked, samples)


def test_gan_stages_must_divide_the_image_side():
    with pytest.raises(ConfigError, match="stages"):
        GANNet(GREY, stages=3)  # 28 is not divisible by 8


def test_token_draw_is_multinomials_draw_without_its_host_checks():
    logits = torch.randn(64, 256) * 3
    ours = draw(logits, torch.Generator().manual_seed(3))
    reference = torch.multinomial(logits.softmax(-1), 1, generator=torch.Generator().manual_seed(3)).squeeze(1)
    assert torch.equal(ours, reference)  # same tokens for the same seed: earlier samples stay reproducible


PRESET_SHAPES = {"compare_mnist": GREY, "compare_cifar10": COLOUR}  # compare_fashion_mnist extends compare_mnist


@pytest.mark.parametrize("preset", sorted(PRESET_SHAPES))
def test_every_model_of_a_dataset_preset_builds_and_scores_at_that_datasets_shape(preset):
    """The presets need dataset configs from elsewhere to compose; their models are checked here
    at the shape those datasets have (28x28x1 or 32x32x3, 256 levels)."""
    spec = PRESET_SHAPES[preset]
    params = OmegaConf.load(CONF / "experiment" / f"{preset}.yaml").hydra.sweeper.params
    x = random_images(spec, 2)
    for name in params.model.split(","):
        model = build_model(compose_config([f"model={name}"]).model, spec).eval()
        if getattr(model, "fits_in_closed_form", False):
            model.fit_closed_form(x)
        elif model.likelihood != "none":
            with torch.no_grad():
                assert torch.isfinite(model.nll_bits_per_dim(x)).all(), name
        else:
            assert model.generate(2).shape == (2, *spec.shape), name
