"""FID's jackknife sampling sd: the suite's distance, a brute-force jackknife, 1/sqrt(n) scaling, the interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy import stats

from bench.config.protocol import Protocol
from bench.core.errors import ConfigError
from bench.evaluate.metrics.feature_metrics import Precomputed, frechet_distance
from bench.evaluate.metrics.fid_jackknife import fid_sampling_std, frechet_of_features, normal_interval


def gaussian(rng: np.random.Generator, n: int, d: int, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """`n` rows of a d-dim Gaussian with a decaying spectrum, the first 2 coordinates shifted."""
    x = rng.normal(size=(n, d)) * scale / np.sqrt(1 + np.arange(d))
    x[:, :2] += shift
    return x


def sqrtm_fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID computed independently: np.cov and scipy.linalg.sqrtm."""
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def brute_force_std(reference: np.ndarray, generated: np.ndarray, reference_groups: int, generated_groups: int):
    """The grouped jackknife by its definition: drop the rows i % G == g of one side, recompute the
    FID with scipy's sqrtm, for every g and both sides; sum the two sides' jackknife variances."""
    variance = 0.0
    for side, groups in ((0, reference_groups), (1, generated_groups)):
        values = []
        for g in range(groups):
            if side == 0:
                values.append(sqrtm_fid(reference[np.arange(len(reference)) % groups != g], generated))
            else:
                values.append(sqrtm_fid(reference, generated[np.arange(len(generated)) % groups != g]))
        values = np.array(values)
        variance += (groups - 1) / groups * ((values - values.mean()) ** 2).sum()
    return math.sqrt(variance)


def test_the_distance_with_nothing_left_out_is_the_suites_fid():
    rng = np.random.default_rng(0)
    reference, generated = gaussian(rng, 450, 64), gaussian(rng, 1000, 64, shift=0.3, scale=1.2)
    suite = frechet_distance(Precomputed(64), torch.from_numpy(reference), torch.from_numpy(generated))
    assert frechet_of_features(reference, generated) == pytest.approx(suite, rel=1e-6)
    assert frechet_of_features(torch.from_numpy(reference), torch.from_numpy(generated)) == pytest.approx(suite)


def test_the_jackknife_equals_a_brute_force_loop_of_sqrtm_fids():
    rng = np.random.default_rng(1)
    # 37 and 53 rows in 6 groups: groups of unequal size on both sides
    reference, generated = gaussian(rng, 37, 5), gaussian(rng, 53, 5, shift=0.5, scale=1.3)
    assert fid_sampling_std(reference, generated, 6) == pytest.approx(
        brute_force_std(reference, generated, 6, 6), rel=1e-6
    )
    # a side with fewer rows than groups: one row per group (the delete-one jackknife) on that side
    small = reference[:9]
    assert fid_sampling_std(small, generated, 12) == pytest.approx(brute_force_std(small, generated, 9, 12), rel=1e-6)


def test_the_sd_shrinks_like_one_over_root_n_when_the_distributions_differ():
    """FID is then asymptotically normal with variance ~ 1/n: 4x the images on both sides halve the sd.
    (Mean over 25 replicates: one jackknife sd is itself a noisy estimate.)"""
    rng = np.random.default_rng(2)

    def mean_std(m: int, n: int) -> float:
        return float(
            np.mean([fid_sampling_std(gaussian(rng, m, 8), gaussian(rng, n, 8, shift=1.0), 20) for _ in range(25)])
        )

    ratio = mean_std(150, 300) / mean_std(600, 1200)
    assert ratio == pytest.approx(2.0, rel=0.15)


def test_the_jackknife_sd_is_near_the_true_spread_of_fid():
    """Known answer by simulation: the sd of 200 independent FIDs, against the mean jackknife sd."""
    rng = np.random.default_rng(3)
    fids, stds = [], []
    for _ in range(200):
        reference, generated = gaussian(rng, 150, 8), gaussian(rng, 300, 8, shift=1.0)
        fids.append(frechet_of_features(reference, generated))
        stds.append(fid_sampling_std(reference, generated, 25))
    # the sd of 200 draws is itself within ~10% (2 standard errors); the jackknife is slightly conservative
    assert np.mean(stds) == pytest.approx(np.std(fids, ddof=1), rel=0.2)


def test_bad_groups_or_too_few_rows_are_refused():
    rng = np.random.default_rng(4)
    x = gaussian(rng, 20, 3)
    with pytest.raises(ValueError, match="groups=1"):
        fid_sampling_std(x, x, 1)
    with pytest.raises(ValueError, match="at least 3"):
        fid_sampling_std(x[:2], x, 5)


def test_normal_interval_is_the_center_plus_minus_z_times_the_rms_sd():
    low, high = normal_interval(10.0, [3.0, 4.0])
    half = stats.norm.ppf(0.975) * math.sqrt((9 + 16) / 2)
    assert (low, high) == pytest.approx((10 - half, 10 + half))
    assert normal_interval(1.0, [0.5]) == pytest.approx((1 - 1.959964 * 0.5, 1 + 1.959964 * 0.5))
    with pytest.raises(ValueError):
        normal_interval(1.0, [])


def test_the_protocol_refuses_jackknife_groups_outside_2_to_n_generated():
    assert Protocol().fid_jackknife_groups == 50 and Protocol().version == 6
    with pytest.raises(ConfigError, match="protocol.fid_jackknife_groups=1: expected an integer >= 2"):
        Protocol(fid_jackknife_groups=1)
    with pytest.raises(ConfigError, match="protocol.fid_jackknife_groups=0: expected a positive integer"):
        Protocol(fid_jackknife_groups=0)
    with pytest.raises(ConfigError, match="protocol.fid_jackknife_groups=200: expected at most n_generated=100"):
        Protocol(fid_jackknife_groups=200, n_generated=100)
