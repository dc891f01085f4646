"""FID's within-run sampling standard deviation: a grouped delete-one-group jackknife over both sets.

FID depends on two random samples, the generated images and the reference images, so its sampling
spread has a part from each. Each side's rows are split into `groups` groups by index modulo
`groups` (the sample order is already random); the FID is recomputed with one group of one side
left out, the other side whole, and the jackknife variance of each side,
`(G - 1) / G * sum_g (fid_(g) - mean_g fid_(g))^2`, is summed over the two sides. Every
leave-one-group-out mean and covariance comes from the side's running sums minus its group's, and
the G Fréchet distances of a side are one batched symmetric eigenvalue call (`frechet_against`).

Coverage (`benchmarks/interval_coverage.py`, Gaussian features d=64, N=1000 vs M=450): FID ± 1.96 sd
covers E[FID at N] in 94-96% of runs when the two distributions differ, and in 99% (conservative)
when they are equal: FID is then a degenerate statistic and the jackknife overstates its sd by
about a third.

NumPy and SciPy only (no torch), so the report layer can import `normal_interval`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy import stats

#: z_{0.975}: the half-width of a normal-theory 95% interval, in standard deviations
Z_95 = float(stats.norm.ppf(0.975))
#: rows a side needs, so that every leave-one-out set still has a covariance
MIN_ROWS = 3


def as_features(x: Any) -> np.ndarray:
    """Features `[N, D]` (a NumPy array or a CPU/GPU torch tensor) as a float64 array."""
    if hasattr(x, "detach"):  # a torch tensor, read without importing torch
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features: expected a 2-d array [N, D], got shape {x.shape}")
    return x


def frechet(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> np.ndarray:
    """Fréchet distance of Gaussians N(mu1, cov1) and N(mu2, cov2), broadcast over leading axes.

    `mu` `[..., D]`, `cov` `[..., D, D]` -> `[...]`. The trace of sqrt(cov1 cov2) is the sum of the
    square roots of the eigenvalues of cov1 @ cov2, real parts taken after the complex square root,
    exactly as torchmetrics' `FrechetInceptionDistance` computes it.
    """
    eigenvalues = np.linalg.eigvals(cov1 @ cov2)
    trace_sqrt = np.sqrt(eigenvalues.astype(np.complex128)).real.sum(-1)
    trace = np.trace(cov1, axis1=-2, axis2=-1) + np.trace(cov2, axis1=-2, axis2=-1)
    return ((mu1 - mu2) ** 2).sum(-1) + trace - 2 * trace_sqrt


def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean `[D]` and sample covariance `[D, D]` (divisor N - 1) of rows `x` `[N, D]`."""
    return x.mean(0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_of_features(reference: Any, generated: Any) -> float:
    """FID between feature sets `[M, D]` and `[N, D]` (what the suite's `frechet_distance` computes)."""
    return float(frechet(*moments(as_features(reference)), *moments(as_features(generated))))


def leave_one_group_out(x: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Means `[G, D]` and covariances `[G, D, D]` of `x` `[N, D]` with group g (rows i, i % G == g) left out.

    From the running sums: the whole side's sums minus the group's, in coordinates centred at the
    side's mean, so that subtracting them loses little of float64's precision.
    """
    n, d = x.shape
    mean = x.mean(0)
    centred = x - mean
    rows = -(-n // groups)
    padded = np.zeros((rows * groups, d))
    padded[:n] = centred  # row i lands in block (i // G, i % G); padding rows add nothing
    blocks = padded.reshape(rows, groups, d).transpose(1, 0, 2)  # [G, rows, D]
    group_sum = blocks.sum(1)  # [G, D]
    group_outer = blocks.transpose(0, 2, 1) @ blocks  # [G, D, D]
    kept = (n - np.bincount(np.arange(n) % groups, minlength=groups)).astype(np.float64)  # [G]
    shift = -group_sum / kept[:, None]  # the kept rows' mean, centred (all rows sum to zero)
    outer = centred.T @ centred - group_outer - kept[:, None, None] * shift[:, :, None] * shift[:, None, :]
    return mean + shift, outer / (kept - 1)[:, None, None]


def frechet_against(mus: np.ndarray, covs: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Fréchet distances of N(mus[g], covs[g]) `[G, D]`, `[G, D, D]` to one N(mu, cov) `[D]`, `[D, D]`, `[G]`.

    The same distance as `frechet`, faster and real throughout: with R the symmetric square root of
    `cov`, the eigenvalues of covs[g] @ cov are those of the symmetric R covs[g] R (`eigvalsh`).
    """
    values, vectors = np.linalg.eigh(cov)
    root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    eigenvalues = np.linalg.eigvalsh(root @ covs @ root)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0, None)).sum(-1)
    return ((mus - mu) ** 2).sum(-1) + np.trace(covs, axis1=-2, axis2=-1) + np.trace(cov) - 2 * trace_sqrt


def _jackknife_variance(values: np.ndarray) -> float:
    g = len(values)
    return float((g - 1) / g * ((values - values.mean()) ** 2).sum())


def fid_sampling_std(reference: Any, generated: Any, groups: int) -> float:
    """The grouped jackknife standard deviation of FID(reference `[M, D]`, generated `[N, D]`).

    Each side is split into `groups` groups by row index modulo `groups` (a side with fewer rows
    than that: one row per group, the delete-one jackknife); the variance is the sum over the two
    sides of `(G - 1) / G * sum_g (fid_(g) - mean)^2`. Needs at least 3 rows per side, so that
    every leave-one-out set still has a covariance.
    """
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 2:
        raise ValueError(f"groups={groups!r}: expected an integer >= 2")
    reference, generated = as_features(reference), as_features(generated)
    if min(len(reference), len(generated)) < MIN_ROWS:
        raise ValueError(
            f"FID jackknife: expected at least {MIN_ROWS} reference and generated rows, "
            f"got {len(reference)} and {len(generated)}"
        )
    mu_r, cov_r = moments(reference)
    mu_g, cov_g = moments(generated)
    without_reference_group = frechet_against(*leave_one_group_out(reference, min(groups, len(reference))), mu_g, cov_g)
    without_generated_group = frechet_against(*leave_one_group_out(generated, min(groups, len(generated))), mu_r, cov_r)
    return math.sqrt(_jackknife_variance(without_reference_group) + _jackknife_variance(without_generated_group))


def normal_interval(center: float, stds: Iterable[float]) -> tuple[float, float]:
    """Normal-theory 95% interval `center ± z_0.975 sqrt(mean(std^2))` from per-draw sds.

    For the data floor: `center` is the mean FID of its draws and `stds` their jackknife sds. The
    draws share the reference set and most of the training images, so their errors are nearly the
    same; the interval takes the draws' typical sd, not that sd over sqrt(draws).
    """
    stds = np.asarray(list(stds), dtype=np.float64)
    if stds.size == 0:
        raise ValueError("normal_interval: expected at least one standard deviation")
    half = Z_95 * math.sqrt(float((stds**2).mean()))
    return center - half, center + half
