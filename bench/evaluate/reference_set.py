"""The reference side of every comparison: classifier, reference images and their statistics.

Also the feature metrics of one image set against it, and the data floor (real training
images used as the "generator" at the same N).
"""

from __future__ import annotations

import fcntl
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.config.protocol import Protocol
from bench.core.errors import BenchError
from bench.data.spec import to_unit
from bench.evaluate.metrics import feature_metrics as fm
from bench.evaluate.metrics.fid_jackknife import MIN_ROWS, fid_sampling_std
from bench.evaluate.metrics.memorization import memorization_threshold, nearest_distances
from bench.evaluate.metrics.prdc import prdc
from bench.evaluate.reference.extractor import SHIPPED, Extractor, cache_dir, dataset_fingerprint, load_extractor
from bench.evaluate.reference.inception import inception_fid

FLOOR_NOTE = (
    "real training images as the generator at the same N, mean over independent draws; the "
    "reference classifier was trained on these images, so the floor is not a held-out "
    "measurement (on digits, held-out images score a lower FID than training images at equal N)"
)
IS_NA = "n/a: unlabelled dataset (the reference network predicts rotations, not classes)"
FLOOR_BY_CLASS_NOTE = (
    "; accuracy and per-class KID come from separate draws of N training images spread "
    "evenly over the classes, as the conditional samples are (the classifier was trained on "
    "them, so the floor's accuracy is optimistic)"
)


@dataclass
class Reference:
    """Everything an evaluation compares against, computed once per dataset and protocol."""

    protocol: Protocol
    extractor: Extractor
    fingerprint: str
    images: torch.Tensor  # uint8 [N, C, H, W] of the reference split
    labels: torch.Tensor  # int64 [N] classes of the reference split
    features: torch.Tensor  # float64 [N, 64]
    mean: torch.Tensor
    std: torch.Tensor
    rank: int
    train: torch.Tensor
    train_labels: torch.Tensor  # int64 classes of `train`
    num_classes: int
    levels: int
    memorization_threshold: float

    def standardized(self, features: torch.Tensor) -> torch.Tensor:
        """Features `[N, D]` standardized with the reference set's mean and std (KID's space)."""
        return (features - self.mean) / self.std

    def protocol_record(self) -> dict:
        p = self.protocol
        return {
            "version": p.version,
            "extractor": {
                **self.extractor.record(),
                "feature_rank": self.rank,
                "num_features": int(self.features.shape[1]),
            },
            "inception_score": (
                f"from the reference classifier's logits over {self.num_classes} classes"
                if self.extractor.has_classes
                else IS_NA
            ),
            "n_reference": len(self.images),
            "reference_split": p.reference_split,
            "is_splits": p.is_splits,
            "pr_k": p.pr_k,
            "iwae_k": p.iwae_k,
            "kid_subsets": p.kid_subsets,
            "seed": p.seed,
            "memorization_threshold": self.memorization_threshold,
            "floor_draws": p.floor_draws,
            "fid_jackknife_groups": p.fid_jackknife_groups,
            "scored_samples": "temperature 1, no top-k, no guidance",
            "guidance_sweep": list(p.guidance_sweep),
        }


_CACHE: dict[tuple, Reference] = {}


def reference_for(datamodule, protocol: Protocol) -> Reference:
    """The `Reference` of `datamodule` under `protocol` (built once per process)."""
    fingerprint = dataset_fingerprint(datamodule)
    key = (fingerprint, protocol)
    if key not in _CACHE:
        images = datamodule.images(protocol.reference_split)
        if len(images) <= protocol.pr_k:
            raise BenchError(
                f"protocol.reference_split={protocol.reference_split!r}: the split holds "
                f"{len(images)} images; expected more than pr_k={protocol.pr_k}"
            )
        extractor = extractor_for(datamodule, protocol)
        feats = extractor.features()(images)
        rank = int(torch.linalg.matrix_rank(feats - feats.mean(0)))
        distinct = len(torch.unique(images.flatten(1), dim=0))
        if rank < min(feats.shape[1], distinct - 1):
            warnings.warn(
                f"reference features have rank {rank} of {feats.shape[1]} on the "
                f"{protocol.reference_split} split: FID/KID see fewer directions",
                stacklevel=2,
            )
        _CACHE[key] = Reference(
            protocol=protocol,
            extractor=extractor,
            fingerprint=fingerprint,
            images=images,
            labels=getattr(datamodule, f"{protocol.reference_split}_labels"),
            features=feats,
            mean=feats.mean(0),
            std=feats.std(0).clamp_min(1e-12),
            rank=rank,
            train=datamodule.train_images,
            train_labels=datamodule.train_labels,
            num_classes=datamodule.spec.num_classes,
            levels=datamodule.spec.levels,
            memorization_threshold=memorization_threshold(
                datamodule.val_images, datamodule.train_images, datamodule.spec.levels
            ),
        )
    return _CACHE[key]


def extractor_for(datamodule, protocol: Protocol) -> Extractor:
    """The reference network of `datamodule`, loaded without reading the reference split's images:
    what validation during training (and tuning, which must never see the test split) scores with."""
    with first_use_lock(datamodule.spec.name, dataset_fingerprint(datamodule)):
        return load_extractor(datamodule, protocol.version)  # finds the weights another job cached


def lock_path(dataset: str, fingerprint: str) -> Path:
    """The lock beside the cached reference networks of one dataset (whatever the protocol version)."""
    return cache_dir() / "classifiers" / f"{dataset}-{fingerprint[:16]}.lock"


@contextmanager
def first_use_lock(dataset: str, fingerprint: str) -> Iterator[None]:
    """Hold an exclusive `flock` while a dataset's reference network is loaded or trained and cached.

    Jobs of a sweep start together: without it each would train the same network. The first holds
    the lock while it trains; the others wait, then find its weights in the cache. Shipped networks
    need no lock; a cache folder that cannot hold a lock file (read-only) is used without one, as
    before, since nothing can be trained into it anyway.
    """
    if dataset in SHIPPED:
        yield
        return
    path = lock_path(dataset, fingerprint)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")
    except OSError:
        yield
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                f"waiting for another job to build the {dataset} reference network (lock {path})",
                file=sys.stderr,
                flush=True,
            )
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or when the process dies
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@torch.no_grad()
def embed(ref: Reference, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 penultimate features `[N, 64]` and logits `[N, K]` of uint8 `images`, in one pass."""
    net, feats, logits = ref.extractor.net, [], []
    for start in range(0, len(images), fm.BATCH):
        f = net.features(to_unit(images[start : start + fm.BATCH], ref.levels))
        feats.append(f.double())
        logits.append(net.head(f).double())
    return torch.cat(feats), torch.cat(logits)


def feature_scores(ref: Reference, images: torch.Tensor, seed: int | None = None) -> dict[str, float]:
    """FID and its jackknife sampling sd, KID (standardized features), IS and PRDC of uint8 `images` `[N, C, H, W]`.

    IS is None where the reference network predicts rotations (an unlabelled dataset), the FID's
    sampling sd where a set holds fewer than 3 images (`bench.evaluate.metrics.fid_jackknife`).

    The classifier sees each image set once per call (the reference set never: its features
    are cached). `seed` draws the KID subsets and IS permutation (default: the protocol seed).
    """
    return scores_of_features(ref, *embed(ref, images), seed)


def scores_of_features(
    ref: Reference, feats: torch.Tensor, logits: torch.Tensor, seed: int | None = None
) -> dict[str, float]:
    """`feature_scores` from features `[N, 64]` and logits `[N, K]` already extracted (`embed`)."""
    p = ref.protocol
    seed = p.seed if seed is None else seed
    identity = fm.Precomputed(feats.shape[1])
    kid_mean, kid_std = fm.kernel_distance(
        identity, ref.standardized(ref.features), ref.standardized(feats), p.kid_subset_size, p.kid_subsets, seed
    )
    return {
        "fid": fm.frechet_distance(identity, ref.features, feats),
        "fid_sampling_std": (
            fid_sampling_std(ref.features, feats, p.fid_jackknife_groups)
            if min(len(feats), len(ref.features)) >= MIN_ROWS
            else None
        ),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "inception_score": (
            fm.inception_score(fm.Precomputed(logits.shape[1]), logits, seed, p.is_splits)
            if ref.extractor.has_classes
            else None
        ),
        **prdc(ref.features, feats, p.pr_k),
    }


def memorization_of(ref: Reference, images: torch.Tensor) -> float:
    """Share of `images` nearer a training image than the validation 5th percentile."""
    return (nearest_distances(images, ref.train, ref.levels) < ref.memorization_threshold).double().mean().item()


def inception_of(ref: Reference, images: torch.Tensor) -> tuple[float | None, str]:
    return inception_fid(ref.images, images, ref.levels, ref.protocol.inception_weights)
