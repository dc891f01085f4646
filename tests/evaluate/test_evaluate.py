"""The protocol on real digits: known orderings, memorization, the data floor and evaluate_module."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from bench.config.protocol import Protocol, floor_seed
from bench.core.errors import BenchError
from bench.data import ImageDataModule, quantize, to_unit
from bench.evaluate.cost.timing import flops
from bench.evaluate.floor import data_floor
from bench.evaluate.metrics.feature_metrics import frechet_distance
from bench.evaluate.reference_set import feature_scores, memorization_of, reference_for
from bench.evaluate.score import evaluate_module, evaluate_samples
from bench.models.base import GenerativeModule
from bench.models.baselines import IndependentPixels, TrainingSetCopier

METRIC_KEYS = {
    "fid",
    "kid_mean",
    "kid_std",
    "inception_score",
    "precision",
    "recall",
    "density",
    "coverage",
    "bits_per_dim",
    "bits_per_dim_kind",
    "elbo_bits_per_dim",
    "memorization",
    "fid_inception",
}
TIMING_KEYS = {
    "sample_images_per_s",
    "latency_ms_per_image",
    "parameters_sampling",
    "parameters_training",
    "flops_per_sample",
    "flops_per_train_sample",
    "peak_memory_mb",
}
PROTOCOL_KEYS = {
    "version",
    "extractor",
    "n_generated",
    "n_reference",
    "reference_split",
    "kid_subset_size",
    "is_splits",
    "pr_k",
    "iwae_k",
    "inception",
}


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID computed independently: sample covariances and scipy.linalg.sqrtm."""
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


@pytest.fixture(scope="module")
def ref(digits):
    return reference_for(digits, Protocol(kid_subsets=20))


@pytest.fixture(scope="module")
def real_set(digits):
    """One fixed set of 600 real training images."""
    order = torch.randperm(len(digits.train_images), generator=torch.Generator().manual_seed(0))
    return digits.train_images[order[:600]], digits.train_labels[order[:600]]


def test_fid_on_digits_features_matches_scipy(ref, real_set):
    images = real_set[0]
    feats = ref.extractor.features()
    ours = frechet_distance(feats, ref.images, images)
    expected = scipy_fid(feats(ref.images).numpy(), feats(images).numpy())
    assert ours == pytest.approx(expected, rel=1e-6)
    assert ref.rank == 64


def test_fid_grows_strictly_with_noise(ref, real_set):
    images, _ = real_set
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(images.shape, generator=g)
    fids = [
        frechet_distance(
            ref.extractor.features(), ref.images, quantize(to_unit(images, ref.levels) + sigma * noise, ref.levels)
        )
        for sigma in (0.0, 0.1, 0.25, 0.5)
    ]
    assert all(a < b for a, b in zip(fids, fids[1:])), fids


def test_dropping_half_the_classes_costs_recall_not_precision(ref, real_set):
    images, labels = real_set
    scores = feature_scores(ref, images[labels < 5])
    assert scores["recall"] < 0.7 and scores["precision"] > 0.9


def test_collapse_has_no_diversity(ref, real_set):
    scores = feature_scores(ref, real_set[0][:1].repeat(300, 1, 1, 1))
    assert scores["inception_score"] < 1.5 and scores["recall"] < 0.05


def test_memorization_of_a_copier_and_of_held_out_images(digits, ref):
    copier = TrainingSetCopier(None, digits.spec)
    copier.fit_closed_form(digits.train_images)
    assert memorization_of(ref, copier.sample(500, generator=torch.Generator().manual_seed(0))) >= 0.95
    # by construction: the threshold is the linearly interpolated 5th percentile of the m validation
    # images' distances, at sorted position (m - 1) * 0.05, so floor of that + 1 of them lie below it
    m = len(digits.val_images)
    val_share = memorization_of(ref, digits.val_images)
    assert val_share == pytest.approx((math.floor((m - 1) * 0.05) + 1) / m, abs=0.5 / m)  # 8 / 150
    # held-out images that did not set the threshold sit no nearer the training images (measured 0.022)
    assert 0 < memorization_of(ref, digits.test_images) < val_share


def test_data_floor_is_seeded_cached_and_bounded_by_the_train_split(ref):
    floor = data_floor(ref, 500)
    assert floor["n_generated"] == 500 and floor["source"] == "train"
    # each draw is 500 training images drawn with its floor seed, scored by an independent FID
    feats = ref.extractor.features()
    reference = feats(ref.images).numpy()
    for draw, scored in enumerate(floor["draws"]):
        g = torch.Generator().manual_seed(floor_seed(ref.protocol.seed, draw))
        order = torch.randperm(len(ref.train), generator=g)
        assert scored["fid"] == pytest.approx(scipy_fid(reference, feats(ref.train[order[:500]]).numpy()), rel=1e-6)
    # 10 other draws of 500 training images measured 14 to 29 (FID's bias here: about 9,000 / N = 18)
    assert 10 < floor["fid"] < 30 and floor["precision"] > 0.9
    assert data_floor(ref, 500) == floor
    with pytest.raises(BenchError, match="n_generated=5000"):
        data_floor(ref, 5000)


def test_evaluate_module_returns_the_contract_and_writes_samples(bars, tmp_path):
    module = IndependentPixels(None, bars.spec)
    module.fit_closed_form(bars.train_images)
    cfg = {
        "version": 1,
        "reference_split": "test",
        "iwae_k": 4,
        "seed": 3,
        "kid_subsets": 10,
        "quality_curve": {"every_seconds": 5, "n_samples": 20},
    }
    result = evaluate_module(module, bars, cfg, n_generated=100, run_dir=tmp_path / "a")
    # `per_class` and `guidance_sweep` join these on conditional runs (tests/evaluate/test_conditional_metrics.py)
    assert set(result) == {"metrics", "protocol", "data_floor", "timing", "conditional"}
    assert result["conditional"] is False
    assert METRIC_KEYS <= set(result["metrics"]) and TIMING_KEYS <= set(result["timing"])
    assert PROTOCOL_KEYS <= set(result["protocol"])
    metrics, protocol = result["metrics"], result["protocol"]
    assert metrics["bits_per_dim_kind"] == "exact" and 0 < metrics["bits_per_dim"] < 2  # 4 levels: 2 bits max
    assert protocol["n_generated"] == 100 and protocol["n_reference"] == 64 and protocol["kid_subset_size"] == 64
    assert protocol["inception"].startswith("skipped") or protocol["inception"] == "computed"
    assert result["timing"]["parameters_sampling"] == 4 * 64
    saved = np.load(tmp_path / "a" / "samples.npz")["images"]
    assert saved.shape == (100, 1, 8, 8) and (tmp_path / "a" / "samples.png").stat().st_size > 0
    again = evaluate_module(module, bars, cfg, n_generated=100, run_dir=tmp_path / "b")
    assert np.array_equal(np.load(tmp_path / "b" / "samples.npz")["images"], saved)
    assert again["metrics"]["fid"] == metrics["fid"] and again["metrics"]["kid_mean"] == metrics["kid_mean"]


def test_evaluate_samples_rejects_bad_samples(bars):
    with pytest.raises(BenchError, match=r"uint8 images \[N, 1, 8, 8\]"):
        evaluate_samples(torch.zeros(50, 1, 7, 7, dtype=torch.uint8), bars, None)
    with pytest.raises(BenchError, match="levels 0..3"):
        evaluate_samples(torch.full((50, 1, 8, 8), 9, dtype=torch.uint8), bars, None)
    with pytest.raises(BenchError, match="more than pr_k=5"):
        evaluate_samples(bars.test_images[:3], bars, None)


def test_a_reference_split_too_small_is_a_clear_error():
    dm = ImageDataModule(name="procedural", val_size=8, test_size=3, source_args={"n": 64})
    with pytest.raises(BenchError, match="reference_split='test'.*holds 3 images"):
        evaluate_samples(dm.train_images[:20], dm, {"reference_split": "test"})


def test_unknown_protocol_keys_are_rejected(bars):
    with pytest.raises(BenchError, match="protocol.kid_size"):
        evaluate_samples(bars.test_images, bars, {"kid_size": 3})


class LSTMGenerator(GenerativeModule):
    """Counter-blind: FlopCounterMode sees no FLOPs inside nn.LSTM."""

    likelihood = "none"

    def __init__(self, spec):
        super().__init__(nn.LSTM(4, 4, batch_first=True), spec)

    def generate(self, n, generator=None):
        out, _ = self.net(torch.zeros(n, self.spec.dims, 4))
        return out[..., 0].reshape(n, *self.spec.shape).sigmoid()


def test_flops_never_report_a_silent_zero(bars):
    value, why = flops(LSTMGenerator(bars.spec), "sample")
    assert value is None and "nn.LSTM" in why
    value, why = flops(LSTMGenerator(bars.spec), "train", bars.train_images)
    assert value is None and why
    counted, how = flops(IndependentPixels(None, bars.spec), "sample")
    assert counted == 4 * 64 and how == "analytic"


def test_a_deferred_timing_draws_the_same_scored_samples_and_leaves_the_speed_to_the_timing_pass():
    from bench.evaluate.cost.timing import DEFERRED, timed_sample
    from bench.models.baselines import IndependentPixels
    from bench.testing.checks import tiny_batch, tiny_spec

    model = IndependentPixels(None, tiny_spec())
    model.fit_closed_form(tiny_batch(model.spec, 30))
    timed, speed = timed_sample(model, 50, seed=7)
    deferred, pending = timed_sample(model, 50, seed=7, defer=True)
    assert torch.equal(timed, deferred)
    assert speed["sample_images_per_s"] > 0 and speed["measurement"]["pass"] == "in the job"
    assert pending["sample_images_per_s"] is None and pending["measurement"]["pass"] == DEFERRED
