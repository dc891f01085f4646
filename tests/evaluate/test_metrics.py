"""Known answers for the feature metrics: FID, KID, IS and precision/recall/density/coverage."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from bench.core.errors import BenchError
from bench.evaluate.metrics.feature_metrics import frechet_distance, inception_score, kernel_distance
from bench.evaluate.metrics.prdc import prdc


class Identity(nn.Module):
    """Feature module for tests: inputs already are float64 features `[N, D]`."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.double()


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID computed independently: sample covariances and scipy.linalg.sqrtm."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def synthetic(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    # one mixing matrix per dimension, so sets differing only in `seed` share a distribution
    mixing = torch.randn(d, d, generator=torch.Generator().manual_seed(d), dtype=torch.float64) / d**0.5
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g, dtype=torch.float64) @ mixing) * scale + shift


def test_fid_of_a_set_with_itself_is_zero():
    x = synthetic(300, 16, 0)
    assert abs(frechet_distance(Identity(16), x, x)) < 1e-8


def test_fid_matches_scipy_on_synthetic_features():
    a, b = synthetic(400, 16, 1), synthetic(300, 16, 2, shift=0.3, scale=1.5)
    ours = frechet_distance(Identity(16), a, b)
    assert ours > 1.0
    assert ours == pytest.approx(scipy_fid(a.numpy(), b.numpy()), rel=1e-6)


def test_fid_needs_two_samples_per_side():
    with pytest.raises(BenchError, match="at least 2"):
        frechet_distance(Identity(4), synthetic(10, 4, 0), synthetic(1, 4, 1))


def test_kid_is_seeded_signed_and_leaves_the_global_rng_alone():
    a, b = synthetic(200, 8, 3), synthetic(200, 8, 4)  # same distribution: KID scatters around 0
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    first = kernel_distance(Identity(8), a, b, subset_size=1000, subsets=20, seed=7)
    after = torch.rand(1)
    assert torch.equal(before, after), "KID consumed the global RNG"
    assert first == kernel_distance(Identity(8), a, b, subset_size=1000, subsets=20, seed=7)
    assert first != kernel_distance(Identity(8), a, b, subset_size=50, subsets=20, seed=8)
    shifted = kernel_distance(Identity(8), a, b + 2.0, subset_size=100, subsets=20, seed=7)
    assert shifted[0] > 10 * abs(first[0])
    # many same-distribution draws: an unbiased, unclamped estimate goes below zero sometimes
    means = [
        kernel_distance(Identity(8), synthetic(40, 8, s), synthetic(40, 8, s + 100), 40, 1, s)[0] for s in range(12)
    ]
    assert min(means) < 0 < max(means)


def test_inception_score_known_answers():
    uniform = torch.zeros(100, 10, dtype=torch.float64)
    assert inception_score(Identity(10), uniform, seed=0) == pytest.approx(1.0, abs=1e-9)
    one_hot = 100.0 * nn.functional.one_hot(torch.arange(200) % 10, 10).double()
    assert inception_score(Identity(10), one_hot, seed=0) == pytest.approx(10.0, rel=1e-6)
    one_class = 100.0 * nn.functional.one_hot(torch.zeros(50, dtype=torch.long), 10).double()
    assert inception_score(Identity(10), one_class, seed=0) == pytest.approx(1.0, abs=1e-6)


def test_prdc_of_a_set_with_itself_and_a_far_shifted_copy():
    x = synthetic(200, 8, 5)
    same = prdc(x, x, k=5)
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0
    assert same["density"] == pytest.approx(1.0, abs=0.3)
    far = prdc(x, x + 100.0, k=5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_matches_a_brute_force_count():
    real, fake = synthetic(60, 3, 6), synthetic(50, 3, 7, shift=0.5)
    got = prdc(real, fake, k=3)

    def radius(points, i):
        d = sorted(float(torch.dist(points[i], points[j])) for j in range(len(points)) if j != i)
        return d[2]

    r_real = [radius(real, i) for i in range(len(real))]
    r_fake = [radius(fake, j) for j in range(len(fake))]
    inside = [[float(torch.dist(real[i], fake[j])) <= r_real[i] for i in range(len(real))] for j in range(len(fake))]
    covered = [[float(torch.dist(real[i], fake[j])) <= r_fake[j] for j in range(len(fake))] for i in range(len(real))]
    assert got["precision"] == pytest.approx(np.mean([any(row) for row in inside]))
    assert got["recall"] == pytest.approx(np.mean([any(row) for row in covered]))
    assert got["density"] == pytest.approx(sum(map(sum, inside)) / (3 * len(fake)))
    nearest = [min(float(torch.dist(real[i], f)) for f in fake) <= r_real[i] for i in range(len(real))]
    assert got["coverage"] == pytest.approx(np.mean(nearest))


def test_prdc_needs_more_points_than_k():
    with pytest.raises(BenchError, match="k=5"):
        prdc(synthetic(5, 3, 0), synthetic(50, 3, 1), k=5)
