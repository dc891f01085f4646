"""The reference classifier: the shipped digits weights and the train-on-first-use cache."""

from __future__ import annotations

import json

import pytest
import torch

from bench.data import ImageDataModule, to_unit
from bench.errors import BenchError
from bench.evaluate import extractor as ex
from bench.evaluate.reference_classifier import accuracy


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
