"""The conditioning every family shares (`GenerativeModule`): label dropout and the labels a
conditional evaluation asks for."""

from __future__ import annotations

import pytest
import torch

from bench.data.spec import DatasetSpec
from bench.models.base import labels_for
from bench.models.build import build_model

BARS = DatasetSpec(
    name="bars",
    channels=1,
    height=8,
    width=8,
    levels=4,
    split_seed=0,
    train_size=8,
    val_size=0,
    test_size=0,
    num_classes=3,
)


def _conditional_gan(label_dropout: float):
    cfg = {
        "family": "gan",
        "conditional": True,
        "module": {"label_dropout": label_dropout},
        "net": {"_target_": "bench.models.gan.GANNet", "latent_dim": 4, "g_hidden": 4, "d_hidden": 4},
    }
    return build_model(cfg, BARS)


def test_label_dropout_replaces_that_share_of_labels_by_the_null_label_and_keeps_the_rest():
    torch.manual_seed(0)
    module = _conditional_gan(0.25)
    labels = torch.arange(20_000) % 3
    dropped = module.training_labels(labels)
    is_null = dropped == module.null_label
    assert abs(is_null.double().mean().item() - 0.25) < 0.02
    assert torch.equal(dropped[~is_null], labels[~is_null])
    assert torch.equal(_conditional_gan(0.0).training_labels(labels), labels)


def test_evaluation_labels_spread_evenly_over_the_classes():
    labels = labels_for(1000, 3)
    assert labels.dtype == torch.int64 and labels.shape == (1000,)
    assert torch.bincount(labels).tolist() == [334, 333, 333]


def test_a_conditional_models_training_flops_count_one_labelled_pass_not_one_per_class():
    from bench.evaluate.cost.timing import flops

    images = torch.randint(0, 4, (8, 1, 8, 8), dtype=torch.uint8)
    cfg = {"family": "gpt", "net": {"_target_": "bench.models.gpt.PixelGPTNet", "d_model": 16, "layers": 1, "heads": 2}}
    plain, _ = flops(build_model(cfg, BARS), "train", images)
    conditional, _ = flops(build_model({**cfg, "conditional": True}, BARS), "train", images)
    assert conditional == pytest.approx(plain, rel=0.05)  # the class token changes little; 3 passes would be 3x
