"""Unlabelled datasets: the reference network learns rotations, and the Inception Score is n/a."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
import torch

from bench.core.errors import BenchError
from bench.core.schema import FEATURE_KEYS
from bench.data import ImageDataModule
from bench.evaluate.reference import extractor as ex
from bench.evaluate.reference.rotation_task import CLASSES, rotation_accuracy, rotations_of
from bench.evaluate.score import evaluate_samples
from bench.report import build_report
from tests.helpers.fake_data_roots import write_image
from tests.helpers.report_records import make_run

SIZE, N_IMAGES = 8, 60


def _oriented(seed: int) -> torch.Tensor:
    """A grey 8x8 image darker at the top than at the bottom, with noise: it has an "upright"."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(20, 230, SIZE).view(SIZE, 1).expand(SIZE, SIZE)
    noise = torch.randint(-40, 41, (SIZE, SIZE), generator=g)
    return (ramp + noise).clamp(0, 255).to(torch.uint8).unsqueeze(0)


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory) -> ImageDataModule:
    root = tmp_path_factory.mktemp("unlabelled")
    (root / "imgs").mkdir()
    for i in range(N_IMAGES):  # all at the top level: no classes
        write_image(_oriented(i), root / "imgs" / f"{i:02d}.png")
    return ImageDataModule(
        "folder",
        root=str(root / "imgs"),
        cache_dir=str(root / "cache"),
        size=SIZE,
        channels=1,
        val_size=10,
        test_size=10,
    )


def test_rotations_of_turns_square_images_and_refuses_others():
    images = torch.arange(2 * 9, dtype=torch.uint8).view(2, 1, 3, 3)
    turned, turns = rotations_of(images)
    assert turned.shape == (8, 1, 3, 3) and turns.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert torch.equal(turned[:2], images) and torch.equal(turned[4:6], images.flip(-1).flip(-2))
    with pytest.raises(BenchError, match=r"square images.*\[2, 1, 3, 4\]"):
        rotations_of(torch.zeros(2, 1, 3, 4, dtype=torch.uint8))


def test_unlabelled_folder_trains_a_rotation_network_with_its_own_key(unlabelled, monkeypatch):
    assert unlabelled.spec.num_classes == 0
    extractor = ex.load_extractor(unlabelled, protocol_version=3)
    assert extractor.task == "rotation" and not extractor.has_classes
    assert ":rotation:" in extractor.id and extractor.net.head.out_features == 4
    acc = rotation_accuracy(extractor.net, unlabelled.test_images, unlabelled.spec.levels)
    assert acc > 0.6  # chance is 0.25
    meta = json.loads(Path(extractor.info["path"]).with_suffix(".json").read_text())
    assert meta["test_accuracy"] == acc == extractor.record()["test_accuracy"]
    assert meta["classes"] == CLASSES and meta["n_test_images"] == 10 and meta["weights_sha256"] == extractor.sha256
    # the same images taken as labelled (constant labels) get another key, id and file
    monkeypatch.setattr(ex, "is_unlabelled", lambda spec: False)
    labelled = ex.load_extractor(unlabelled, protocol_version=3)
    assert labelled.has_classes and labelled.id != extractor.id and labelled.sha256 != extractor.sha256
    assert ":rotation:" not in labelled.id and labelled.info["path"] != extractor.info["path"]


def test_unlabelled_evaluation_end_to_end_has_no_inception_score(unlabelled):
    samples = unlabelled.train_images[:30].clone()
    samples[::2] = samples[::2].flip(-2)  # half upside down: a generator with a visible flaw
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny reference set may not span all 64 feature directions
        result = evaluate_samples(samples, unlabelled, None)
    metrics, protocol, floor = result["metrics"], result["protocol"], result["data_floor"]
    assert metrics["inception_score"] is None and floor["inception_score"] is None
    assert all(d["inception_score"] is None for d in floor["draws"])
    assert all(math.isfinite(metrics[k]) for k in FEATURE_KEYS if k != "inception_score")
    assert metrics["fid"] > floor["fid"]
    assert protocol["extractor"]["classes"] == CLASSES and protocol["inception_score"].startswith("n/a")
    assert 0.6 < protocol["extractor"]["test_accuracy"] <= 1.0


def test_report_shows_a_dash_for_a_missing_inception_score(tmp_path):
    for seed in range(2):
        run = make_run(tmp_path, "gpt", seed, dataset="folder", extra_metrics={"inception_score": None})
        record = json.loads((run / "result.json").read_text())
        record["data_floor"]["inception_score"] = None
        (run / "result.json").write_text(json.dumps(record))
    lines = build_report(tmp_path).markdown.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "IS (classifier logits)" in line)
    column = [c.strip() for c in lines[start].split("|")].index("IS (classifier logits)")
    rows = [line for line in lines[start + 2 :] if line.startswith("|")]
    rows = rows[: next((i for i, r in enumerate(rows) if "data floor" in r), len(rows)) + 1]  # the quality table
    assert len(rows) == 2 and all([c.strip(" *") for c in row.split("|")][column] == "–" for row in rows)


def test_conditional_scoring_is_refused_on_an_unlabelled_dataset(unlabelled):
    with pytest.raises(BenchError, match="labelled dataset with at least 2 classes"):
        evaluate_samples(unlabelled.train_images[:30], unlabelled, None, labels=torch.zeros(30, dtype=torch.int64))
