"""The evaluation path's feature metrics and memorization, checked against independent computations
on digits, through the public entry point `evaluate_samples`."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.spatial.distance import cdist
from scipy.special import log_softmax, logsumexp

from bench.evaluate.metrics.fid_jackknife import fid_sampling_std
from bench.evaluate.reference.extractor import load_extractor
from bench.evaluate.score import evaluate_samples


@pytest.fixture(scope="module")
def samples(digits):
    """450 real training images: as many as the reference (test) split, so KID's subsets are whole sets."""
    order = torch.randperm(len(digits.train_images), generator=torch.Generator().manual_seed(5))
    return digits.train_images[order[: len(digits.test_images)]]


@pytest.fixture(scope="module")
def published(digits, samples):
    return evaluate_samples(samples, digits, None)


def classifier_outputs(digits, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The reference classifier's raw penultimate features `[N, D]` and logits `[N, K]` (float64),
    taken from the network itself rather than through the evaluation code."""
    net = load_extractor(digits, 1).net
    with torch.no_grad():
        x = images.float() / (digits.spec.levels - 1)
        return net.features(x).double().numpy(), net(x).double().numpy()


def penultimate_features(digits, images: torch.Tensor) -> np.ndarray:
    return classifier_outputs(digits, images)[0]


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def test_published_fid_equals_scipy_fid_on_the_classifier_features(digits, samples, published):
    expected = scipy_fid(penultimate_features(digits, digits.test_images), penultimate_features(digits, samples))
    assert 5 < expected < 100  # a real-vs-real FID at this N, in raw (not standardized) features
    assert published["metrics"]["fid"] == pytest.approx(expected, rel=1e-6)


def test_published_fid_sampling_std_is_the_jackknife_of_the_classifier_features(digits, samples, published):
    real, fake = penultimate_features(digits, digits.test_images), penultimate_features(digits, samples)
    expected = fid_sampling_std(real, fake, 50)
    assert 0 < expected < published["metrics"]["fid"]
    assert published["metrics"]["fid_sampling_std"] == pytest.approx(expected, rel=1e-6)
    assert published["protocol"]["fid_jackknife_groups"] == 50
    # every draw of the data floor carries its own, for the floor's interval
    draws = published["data_floor"]["draws"]
    assert len(draws) == 5 and all(0 < d["fid_sampling_std"] < d["fid"] for d in draws)


def unbiased_poly_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with KID's kernel (x.y / d + 1)^3."""
    d = x.shape[1]
    kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
    m, n = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()
    )


def test_published_kid_is_the_mmd_of_features_standardized_by_the_reference(digits, samples, published):
    real, fake = penultimate_features(digits, digits.test_images), penultimate_features(digits, samples)
    mean, std = real.mean(0), real.std(0, ddof=1)
    expected = unbiased_poly_mmd((real - mean) / std, (fake - mean) / std)
    assert published["metrics"]["kid_mean"] == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert published["protocol"]["kid_subset_size"] == len(samples)


def test_published_inception_score_is_one_split_of_the_classifier_softmax(digits, samples, published):
    log_p = log_softmax(classifier_outputs(digits, samples)[1], axis=1)
    log_marginal = logsumexp(log_p, axis=0) - np.log(len(log_p))
    expected = np.exp((np.exp(log_p) * (log_p - log_marginal)).sum(1).mean())
    assert published["metrics"]["inception_score"] == pytest.approx(expected, rel=1e-6)


def test_published_precision_recall_density_coverage_use_k_5_neighbourhoods(digits, samples, published):
    real, fake = penultimate_features(digits, digits.test_images), penultimate_features(digits, samples)
    k = 5
    real_radii = np.sort(cdist(real, real), axis=1)[:, k]  # column 0 is each point itself
    fake_radii = np.sort(cdist(fake, fake), axis=1)[:, k]
    dist = cdist(real, fake)
    expected = {
        "precision": (dist <= real_radii[:, None]).any(0).mean(),
        "recall": (dist <= fake_radii[None, :]).any(1).mean(),
        "density": (dist <= real_radii[:, None]).sum() / (k * len(fake)),
        "coverage": (dist.min(1) <= real_radii).mean(),
    }
    assert {key: published["metrics"][key] for key in expected} == pytest.approx(expected, abs=1e-12)


def test_data_floor_over_the_whole_train_split_is_the_fid_of_the_train_split(digits):
    train = digits.train_images
    floor = evaluate_samples(train, digits, None)["data_floor"]  # N = every training image: any draw is them all
    expected = scipy_fid(penultimate_features(digits, digits.test_images), penultimate_features(digits, train))
    assert floor["fid"] == pytest.approx(expected, rel=1e-6)


def _memorization(digits, images: torch.Tensor) -> float:
    return evaluate_samples(images, digits, None)["metrics"]["memorization"]


def test_memorization_of_held_out_copied_and_half_copied_images(digits):
    val, train = digits.val_images, digits.train_images
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
    copies = train[order[: len(val)]]
    # the threshold is the validation split's 5th percentile: it scores 0.05 by construction
    assert _memorization(digits, val) == pytest.approx(0.05, abs=0.02)
    assert _memorization(digits, copies) >= 0.95
    half = len(val) // 2
    assert _memorization(digits, torch.cat([val[:half], copies[half:]])) == pytest.approx(0.5, abs=0.05)
