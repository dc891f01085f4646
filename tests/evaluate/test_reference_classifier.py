"""The reference classifier: the shipped digits weights and the train-on-first-use cache."""

from __future__ import annotations

import json

import pytest
import torch

from bench.core.errors import BenchError
from bench.data import ImageDataModule, to_unit
from bench.evaluate.reference import extractor as ex
from bench.evaluate.reference.classifier import accuracy


def test_shipped_digits_classifier_matches_its_record():
    dm = ImageDataModule(name="digits")
    meta = json.loads(ex.SHIPPED["digits"].with_suffix(".json").read_text())
    assert meta["split_sha256"] == dm.split.sha256()
    assert meta["weights_sha256"] == ex.file_sha256(ex.SHIPPED["digits"])
    assert ex.SHIPPED["digits"].stat().st_size < 250_000
    extractor = ex.load_extractor(dm, protocol_version=1)
    acc = accuracy(extractor.net, dm.test_images, dm.test_labels, dm.spec.levels)
    assert acc >= 0.97 and acc == pytest.approx(meta["test_accuracy"], abs=1e-6)
    feats = extractor.features()(dm.test_images)
    assert feats.dtype == torch.float64 and feats.shape == (450, 64)
    assert int(torch.linalg.matrix_rank(feats - feats.mean(0))) == 64 == meta["feature_rank_test"]
    logits = extractor.logits()(dm.test_images)
    assert torch.equal(logits.argmax(1), extractor.net(to_unit(dm.test_images, 17)).argmax(1))


def test_a_changed_split_never_uses_the_shipped_weights():
    with pytest.raises(BenchError, match="split"):
        ex.load_extractor(ImageDataModule(name="digits", split_seed=1), protocol_version=1)


def test_other_datasets_train_once_and_reuse_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    dm = ImageDataModule(name="procedural", val_size=32, test_size=32, source_args={"n": 160})
    first = ex.load_extractor(dm, protocol_version=1)
    files = list((tmp_path / "classifiers").glob("*.pt"))
    assert len(files) == 1 and first.sha256 == ex.file_sha256(files[0])
    assert not list((tmp_path / "classifiers").glob("*.tmp"))

    def no_training(*args, **kwargs):
        raise AssertionError("retrained although a cached classifier exists")

    monkeypatch.setattr(ex, "train_classifier", no_training)
    again = ex.load_extractor(dm, protocol_version=1)
    assert again.sha256 == first.sha256 and again.id == first.id
    # another dataset (more images) or another protocol version gets its own key
    monkeypatch.undo()
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    other = ImageDataModule(name="procedural", val_size=32, test_size=32, source_args={"n": 161})
    assert ex.load_extractor(other, protocol_version=1).id != first.id
    assert ex.load_extractor(dm, protocol_version=2).id != first.id
    assert len(list((tmp_path / "classifiers").glob("*.pt"))) == 3


def test_a_corrupt_cached_classifier_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    dm = ImageDataModule(name="procedural", val_size=32, test_size=32, source_args={"n": 100})
    ex.load_extractor(dm, protocol_version=1)
    (cached,) = (tmp_path / "classifiers").glob("*.pt")
    cached.write_bytes(b"not a checkpoint")
    with pytest.raises(BenchError, match=str(cached.name)):
        ex.load_extractor(dm, protocol_version=1)


def test_a_trained_classifier_records_its_test_accuracy(tmp_path, monkeypatch):
    from bench.config.protocol import Protocol
    from bench.evaluate.reference_set import reference_for

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    dm = ImageDataModule(name="procedural", val_size=32, test_size=32, source_args={"n": 140})
    extractor = ex.load_extractor(dm, protocol_version=3)
    (weights,) = (tmp_path / "classifiers").glob("*.pt")
    sidecar = json.loads(weights.with_suffix(".json").read_text())
    acc = accuracy(extractor.net, dm.test_images, dm.test_labels, dm.spec.levels)
    assert 0.0 <= acc <= 1.0 and sidecar["test_accuracy"] == acc
    assert sidecar["n_test_images"] == 32 and sidecar["accuracy_split"] == "test"
    assert sidecar["weights_sha256"] == extractor.sha256 and sidecar["written"] == "after training"
    assert {sidecar[k] for k in ("architecture", "seed", "epochs")} == {ex.ARCHITECTURE, 0, 40}
    ref = reference_for(dm, Protocol.from_config({"version": 3}))
    record = ref.protocol_record()["extractor"]
    assert record["test_accuracy"] == acc and record["classes"] == "2 dataset classes"
    assert record["id"] == extractor.id and ":rotation:" not in record["id"]
    assert ref.protocol_record()["inception_score"].startswith("from the reference classifier's logits")


def test_a_missing_or_stale_sidecar_is_measured_again_without_retraining(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    dm = ImageDataModule(name="procedural", val_size=32, test_size=32, source_args={"n": 120})
    first = ex.load_extractor(dm, protocol_version=1)
    (weights,) = (tmp_path / "classifiers").glob("*.pt")
    side = weights.with_suffix(".json")
    measured = json.loads(side.read_text())["test_accuracy"]
    monkeypatch.setattr(ex, "train_classifier", lambda *a, **k: pytest.fail("retrained"))
    for damage in (
        side.unlink,
        lambda: side.write_text("{not json"),
        lambda: side.write_text(json.dumps({**json.loads(side.read_text()), "weights_sha256": "0" * 64})),
    ):
        damage()
        again = ex.load_extractor(dm, protocol_version=1)
        rebuilt = json.loads(side.read_text())
        assert rebuilt["written"].startswith("on load") and rebuilt["weights_sha256"] == first.sha256
        assert rebuilt["test_accuracy"] == measured == again.record()["test_accuracy"]


def test_the_shipped_classifier_records_its_accuracy_under_the_same_name():
    dm = ImageDataModule(name="digits")
    record = ex.load_extractor(dm, protocol_version=1).record()
    meta = json.loads(ex.SHIPPED["digits"].with_suffix(".json").read_text())
    assert record["test_accuracy"] == meta["test_accuracy"] and record["n_test_images"] == 450
    assert record["classes"] == "10 dataset classes"
