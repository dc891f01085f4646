"""The JSON beside a cached reference classifier: how good it is, measured once.

`classifiers/<name>-<key>.pt` gets `classifiers/<name>-<key>.json` with the network's accuracy on
the dataset's test split, the number of test images, what its outputs are (the dataset's classes
or, on an unlabelled dataset, rotations), architecture, seed and epochs, and the hash of the
weights it describes. It is read as JSON and nothing else. A cache from before sidecars existed,
or a sidecar that is damaged or describes other weights, is measured again on load (one forward
pass over the test split) and rewritten, so every record can say how good its extractor is.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.core.atomic import write_json_atomic
from bench.evaluate.reference.classifier import ARCHITECTURE, EPOCHS, ReferenceCNN, accuracy
from bench.evaluate.reference.rotation_task import CLASSES as ROTATION_CLASSES
from bench.evaluate.reference.rotation_task import rotation_accuracy

#: The sidecar's fields that go into every run record (`protocol.extractor`); the shipped digits
#: classifier's metadata has the same names.
RECORD_KEYS = ("test_accuracy", "accuracy_split", "n_test_images", "classes")


def sidecar_path(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def measure(net: ReferenceCNN, datamodule, rotation: bool, seed: int, weights_sha256: str, written: str) -> dict:
    """The sidecar's content for `net`: its accuracy on `datamodule`'s test split, and what it is."""
    images, levels = datamodule.test_images, datamodule.spec.levels
    acc = rotation_accuracy(net, images, levels) if rotation else accuracy(net, images, datamodule.test_labels, levels)
    return {
        "test_accuracy": acc,
        "accuracy_split": "test" + (" (each image at 0/90/180/270 degrees)" if rotation else ""),
        "n_test_images": len(images),
        "classes": ROTATION_CLASSES if rotation else f"{datamodule.spec.num_classes} dataset classes",
        "architecture": ARCHITECTURE,
        "seed": seed,
        "epochs": EPOCHS,
        "weights_sha256": weights_sha256,
        "written": written,
    }


def write_sidecar(weights: Path, meta: dict) -> None:
    write_json_atomic(sidecar_path(weights), meta)


def read_or_measure(
    weights: Path, weights_sha256: str, net: ReferenceCNN, datamodule, rotation: bool, seed: int
) -> dict:
    """The sidecar of `weights`; measured again and rewritten when missing, damaged or stale."""
    path = sidecar_path(weights)
    try:
        meta = json.loads(path.read_text())
        if (
            isinstance(meta, dict)
            and meta.get("weights_sha256") == weights_sha256
            and all(k in meta for k in RECORD_KEYS)
        ):
            return meta
    except (OSError, ValueError):
        pass  # absent (a cache from before sidecars) or damaged: measure again below
    meta = measure(net, datamodule, rotation, seed, weights_sha256, "on load (the sidecar was missing or stale)")
    write_sidecar(weights, meta)
    return meta
