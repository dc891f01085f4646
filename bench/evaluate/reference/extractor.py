"""Where the reference classifier comes from: shipped (digits) or trained once and cached.

Digits' classifier ships in `bench/evaluate/assets/` with the hash of the split it was trained
on, so every machine measures with the same extractor. Other datasets train one on first use
and cache it under a key of (dataset fingerprint, architecture, seed, protocol version) in
`$BENCH_CACHE` (default `~/.cache/bench`). The first job to need it takes a lock beside the cache
(`bench.evaluate.reference_set.first_use_lock`), so jobs of a sweep started together train it once and
the others wait and load it; writes go through a temp file and a rename, so no reader ever sees
half a file. Beside the weights a JSON sidecar holds the
network's test accuracy (`bench.evaluate.reference.sidecar`), which every run record repeats.
A dataset with fewer than 2 classes gets a network trained to predict rotations instead
(`bench.evaluate.reference.rotation_task`), under its own key and id, and no Inception Score.
`bench-reference export/import` (`bench.evaluate.reference.transfer`) carries a cached network to
another machine, so both score with the same weights.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from bench.core.errors import BenchError
from bench.data.spec import to_unit
from bench.evaluate.reference import sidecar
from bench.evaluate.reference.classifier import ARCHITECTURE, NUM_FEATURES, ReferenceCNN, train_classifier
from bench.evaluate.reference.rotation_task import ROTATIONS, is_unlabelled, train_rotation_classifier
from bench.run.checkpoints import save_atomic

ASSETS = Path(__file__).resolve().parents[1] / "assets"
SHIPPED = {"digits": ASSETS / "digits_classifier.pt"}
CLASSIFIER_SEED = 0


class ClassifierFeatures(nn.Module):
    """uint8 `[N, C, H, W]` -> float64 penultimate features `[N, 64]`, optionally standardized.

    Shaped for torchmetrics' custom `feature=` argument (`num_features` is set, so the metric
    never probes it with a random input).
    """

    def __init__(
        self, net: ReferenceCNN, levels: int, mean: torch.Tensor | None = None, std: torch.Tensor | None = None
    ):
        super().__init__()
        self.net, self.levels, self.num_features = net, levels, NUM_FEATURES
        self.register_buffer("mean", None if mean is None else mean.double())
        self.register_buffer("std", None if std is None else std.double())

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feats = self.net.features(to_unit(images, self.levels)).double()
        if self.mean is not None:
            feats = (feats - self.mean) / self.std
        return feats


class ClassifierLogits(nn.Module):
    """uint8 `[N, C, H, W]` -> float64 logits `[N, num_classes]` (for InceptionScore)."""

    def __init__(self, net: ReferenceCNN, levels: int):
        super().__init__()
        self.net, self.levels = net, levels

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(to_unit(images, self.levels)).double()


@dataclass
class Extractor:
    """A frozen reference classifier with its identity (recorded in every result)."""

    net: ReferenceCNN
    levels: int
    id: str
    sha256: str
    info: dict = field(default_factory=dict)
    #: "classes" (logits over the dataset's classes) or "rotation" (an unlabelled dataset: logits over
    #: 4 rotations, which mean nothing about kinds of images, so there is no Inception Score)
    task: str = "classes"

    @property
    def has_classes(self) -> bool:
        return self.task == "classes"

    def record(self) -> dict:
        """Identity and quality, for the record's `protocol.extractor`."""
        return {"id": self.id, "sha256": self.sha256, **{k: self.info.get(k) for k in sidecar.RECORD_KEYS}}

    def features(self, mean: torch.Tensor | None = None, std: torch.Tensor | None = None) -> ClassifierFeatures:
        return ClassifierFeatures(self.net, self.levels, mean, std)

    def logits(self) -> ClassifierLogits:
        return ClassifierLogits(self.net, self.levels)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dataset_fingerprint(datamodule) -> str:
    """Hash of the spec, the split and the training images and labels: any change gives a new key."""
    h = hashlib.sha256(json.dumps(datamodule.spec.to_dict(), sort_keys=True).encode())
    h.update(datamodule.split.sha256().encode())
    h.update(datamodule.train_images.contiguous().numpy().tobytes())
    h.update(datamodule.train_labels.contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """Where `load_extractor` caches the trained reference classifier of one dataset config and
    protocol version, and what its key hashes (`bench.evaluate.reference.transfer` checks an
    imported classifier against the same)."""

    path: Path
    key: str
    #: the dataset's name, with ":rotation" for an unlabelled dataset
    name: str
    rotation: bool
    #: what `key` hashes: dataset fingerprint, architecture, seed, protocol version[, task]
    fields: dict

    @property
    def extractor_id(self) -> str:
        return f"{self.name}:{ARCHITECTURE}:seed{CLASSIFIER_SEED}:cache-{self.key}"


def cache_entry(datamodule, protocol_version: int) -> CacheEntry:
    """The cache file and key of `datamodule`'s trained reference classifier (shipped or not)."""
    spec = datamodule.spec
    rotation = is_unlabelled(spec)
    fields = {
        "dataset": dataset_fingerprint(datamodule),
        "architecture": ARCHITECTURE,
        "seed": CLASSIFIER_SEED,
        "protocol_version": protocol_version,
    }
    if rotation:  # only then, so labelled datasets keep the keys (and caches) they had
        fields["task"] = "rotation"
    key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
    name = f"{spec.name}:rotation" if rotation else spec.name
    path = cache_dir() / "classifiers" / f"{name.replace(':', '-')}-{key}.pt"
    return CacheEntry(path, key, name, rotation, fields)


def num_outputs(spec, rotation: bool) -> int:
    """The size of the classifier's head: 4 rotations, or the dataset's classes (at least 2)."""
    return ROTATIONS if rotation else max(spec.num_classes, 2)


def load_extractor(datamodule, protocol_version: int) -> Extractor:
    """The reference classifier for `datamodule`'s dataset: shipped, cached, or trained now."""
    spec = datamodule.spec
    if spec.name in SHIPPED:
        return _load_shipped(SHIPPED[spec.name], datamodule)
    entry = cache_entry(datamodule, protocol_version)
    path, rotation = entry.path, entry.rotation
    if not path.exists():
        if rotation:
            net = train_rotation_classifier(datamodule.train_images, spec, seed=CLASSIFIER_SEED)
        else:
            net = train_classifier(datamodule.train_images, datamodule.train_labels, spec, seed=CLASSIFIER_SEED)
        save_atomic(net.state_dict(), path)
        sidecar.write_sidecar(
            path, sidecar.measure(net, datamodule, rotation, CLASSIFIER_SEED, file_sha256(path), "after training")
        )
    net = _load_weights(path, spec.channels, num_outputs(spec, rotation))
    sha = file_sha256(path)
    meta = sidecar.read_or_measure(path, sha, net, datamodule, rotation, CLASSIFIER_SEED)
    return Extractor(
        net,
        spec.levels,
        entry.extractor_id,
        sha,
        {"source": "cache", "path": str(path), **meta},
        task="rotation" if rotation else "classes",
    )


def cache_dir() -> Path:
    return Path(os.environ.get("BENCH_CACHE") or Path.home() / ".cache" / "bench")


def _load_weights(path: Path, channels: int, num_classes: int) -> ReferenceCNN:
    net = ReferenceCNN(channels, num_classes)
    try:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as err:  # a truncated or foreign file: say which and what was expected
        raise BenchError(
            f"{path}: expected reference classifier weights ({ARCHITECTURE}); "
            f"could not load them ({type(err).__name__}); delete the file to retrain"
        ) from None
    return net.eval().requires_grad_(False)


def _load_shipped(path: Path, datamodule) -> Extractor:
    meta_path = path.with_suffix(".json")
    if not (path.exists() and meta_path.exists()):
        raise BenchError(
            f"{path}: the shipped reference classifier is missing; "
            "run `python -m bench.cli.train_reference` to rebuild it"
        )
    meta = json.loads(meta_path.read_text())
    split_hash = datamodule.split.sha256()
    if meta["split_sha256"] != split_hash:
        raise BenchError(
            f"{meta_path}: the shipped classifier was trained on split {meta['split_sha256'][:12]} "
            f"(split_seed {meta['split_seed']}, val {meta['val_size']}, test {meta['test_size']}), "
            f"but this dataset config gives split {split_hash[:12]}; use the protocol's split"
        )
    sha = file_sha256(path)
    if sha != meta["weights_sha256"]:
        raise BenchError(
            f"{path}: weights hash {sha[:12]} does not match {meta_path.name} "
            f"({meta['weights_sha256'][:12]}); reinstall the package or retrain"
        )
    net = _load_weights(path, datamodule.spec.channels, meta["num_classes"])
    # the shipped metadata predates the sidecar's names for the split and the classes
    described = {
        "accuracy_split": "test",
        "n_test_images": meta["test_size"],
        "classes": f"{meta['num_classes']} dataset classes",
    }
    return Extractor(net, datamodule.spec.levels, meta["id"], sha, {"source": "shipped", **described, **meta})
