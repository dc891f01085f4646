"""`bench-reference export/import`: one machine's reference classifier carried to another's cache."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
import torch
from omegaconf import OmegaConf

from bench.cli.reference import main
from bench.core.errors import BenchError
from bench.data import ImageDataModule
from bench.evaluate.reference import extractor as ex
from bench.evaluate.reference import transfer
from bench.evaluate.reference.rotation_task import train_rotation_classifier
from bench.testing.cache import private_cache
from tests.helpers.configs import compose_config
from tests.helpers.fake_data_roots import random_image, write_image

#: A small procedural set, given the same way on the command line and to the functions.
OVERRIDES = ["dataset=procedural", "dataset.source_args.n=160", "dataset.val_size=32", "dataset.test_size=32"]


@pytest.fixture(scope="module")
def machine_a(tmp_path_factory):
    """Cache A with the set's classifier trained in it, and its export: (datamodule, version, cache, file)."""
    cfg = compose_config(OVERRIDES)
    dm = ImageDataModule(**OmegaConf.to_container(cfg.dataset, resolve=True))
    version = int(cfg.protocol.version)
    cache = tmp_path_factory.mktemp("cache-a")
    exported = tmp_path_factory.mktemp("sent") / "procedural-reference.pt"
    with private_cache(cache):
        done = transfer.export_reference(dm, version, exported)
        trained = ex.load_extractor(dm, version)
    assert done["sha256"] == trained.sha256 and done["extractor_id"] == trained.id
    return dm, version, cache, exported, trained


@pytest.fixture
def cache_b(tmp_path, monkeypatch):
    """An empty cache (machine B), where nothing may be trained."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache-b"))
    monkeypatch.setattr(ex, "train_classifier", lambda *a, **k: pytest.fail("trained instead of importing"))
    monkeypatch.setattr(ex, "train_rotation_classifier", lambda *a, **k: pytest.fail("trained instead of importing"))
    return tmp_path / "cache-b"


def _edited(source, target, edit) -> None:
    payload = torch.load(source, weights_only=True)
    edit(payload)
    torch.save(payload, target)


def test_an_imported_classifier_is_the_one_load_extractor_uses(machine_a, cache_b):
    dm, version, _, exported, trained = machine_a
    payload = torch.load(exported, weights_only=True)  # plain data only
    assert payload["weights_sha256"] == trained.sha256 and payload["key_fields"]["protocol_version"] == version
    done = transfer.import_reference(exported, dm, version)
    assert done["installed"] == "written" and done["test_accuracy_measured"] == done["test_accuracy_recorded"]
    loaded = ex.load_extractor(dm, version)  # would fail if it trained
    (cached,) = (cache_b / "classifiers").glob("*.pt")
    assert loaded.sha256 == trained.sha256 == ex.file_sha256(cached) == loaded.record()["sha256"]
    assert loaded.id == trained.id and loaded.record() == trained.record()
    assert json.loads(cached.with_suffix(".json").read_text())["written"].startswith("imported from")
    again = transfer.import_reference(exported, dm, version)
    assert again["installed"].startswith("already cached")


@pytest.mark.parametrize(
    ("edit", "mismatch"),
    [
        (lambda p: p["weights_file"].__setitem__(100, p["weights_file"][100] ^ 1), "weights sha256 mismatch"),
        (lambda p: p["sidecar"].__setitem__("test_accuracy", p["sidecar"]["test_accuracy"] - 1 / 32), "accuracy"),
        (lambda p: p.__setitem__("key", "0" * 16), "cache key mismatch"),
    ],
    ids=["weights", "recorded-accuracy", "key"],
)
def test_an_edited_export_is_refused_and_nothing_is_written(machine_a, cache_b, tmp_path, edit, mismatch):
    dm, version, _, exported, _ = machine_a
    tampered = tmp_path / "tampered.pt"
    _edited(exported, tampered, edit)
    with pytest.raises(BenchError, match=mismatch) as err:
        transfer.import_reference(tampered, dm, version)
    assert str(tampered) in str(err.value) and "\n" not in str(err.value)
    assert not cache_b.exists()


def test_other_weights_with_consistent_hashes_fail_the_accuracy_check(machine_a, cache_b, tmp_path):
    dm, version, _, exported, trained = machine_a
    assert trained.record()["test_accuracy"] > 0.6  # so flipping every prediction changes it

    def flip_predictions(payload):
        state = torch.load(io.BytesIO(payload["weights_file"].numpy().tobytes()), weights_only=True)
        state["head.weight"], state["head.bias"] = -state["head.weight"], -state["head.bias"]
        buffer = io.BytesIO()
        torch.save(state, buffer)
        raw = buffer.getvalue()
        sha = hashlib.sha256(raw).hexdigest()
        payload["weights_file"] = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
        payload["weights_sha256"] = payload["sidecar"]["weights_sha256"] = sha

    tampered = tmp_path / "other-weights.pt"
    _edited(exported, tampered, flip_predictions)
    with pytest.raises(BenchError, match=r"test accuracy mismatch: recorded [\d.]+, measured here [\d.]+"):
        transfer.import_reference(tampered, dm, version)
    assert not cache_b.exists()


def test_an_export_for_another_dataset_or_protocol_names_the_field(machine_a, cache_b):
    dm, version, _, exported, _ = machine_a
    other = ImageDataModule(name="procedural", val_size=32, test_size=32, source_args={"n": 161})
    with pytest.raises(BenchError, match="dataset fingerprint mismatch"):
        transfer.import_reference(exported, other, version)
    with pytest.raises(BenchError, match=f"protocol version mismatch: the file has {version}, .* gives {version + 1}"):
        transfer.import_reference(exported, dm, version + 1)
    assert not cache_b.exists()


def test_a_file_that_is_not_an_export_is_one_line(machine_a, cache_b, tmp_path):
    dm, version, *_ = machine_a
    text, weights = tmp_path / "notes.txt", tmp_path / "state.pt"
    text.write_text("not a checkpoint")
    torch.save({"head.weight": torch.zeros(2)}, weights)
    for path, found in ((text, "UnpicklingError"), (weights, "format None"), (tmp_path / "absent.pt", "no such file")):
        with pytest.raises(BenchError, match=found) as err:
            transfer.import_reference(path, dm, version)
        assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
        assert "bench-reference export" in str(err.value)
    assert not cache_b.exists()


def test_a_different_cached_classifier_is_replaced_only_with_force(machine_a, cache_b):
    dm, version, _, exported, trained = machine_a
    target = ex.cache_entry(dm, version).path
    target.parent.mkdir(parents=True)
    target.write_bytes(b"another machine's weights")
    with pytest.raises(BenchError, match="--force"):
        transfer.import_reference(exported, dm, version)
    assert target.read_bytes() == b"another machine's weights"
    done = transfer.import_reference(exported, dm, version, force=True)
    assert done["installed"].startswith("replaced") and ex.file_sha256(target) == trained.sha256
    assert ex.load_extractor(dm, version).sha256 == trained.sha256


def test_an_unlabelled_datasets_rotation_network_transfers_too(tmp_path, cache_b):
    (tmp_path / "imgs").mkdir()
    for i in range(40):  # all at the top level: no classes, so a rotation network
        write_image(random_image(1, 8, 8, seed=i), tmp_path / "imgs" / f"{i:02d}.png")
    folder = {"root": str(tmp_path / "imgs"), "cache_dir": str(tmp_path / "decoded"), "size": 8, "channels": 1}
    dm = ImageDataModule("folder", val_size=8, test_size=8, **folder)
    with private_cache(tmp_path / "cache-a"), pytest.MonkeyPatch.context() as machine_a:
        machine_a.setattr(ex, "train_rotation_classifier", train_rotation_classifier)  # A may train
        done = transfer.export_reference(dm, 1, tmp_path / "rotation.pt")
    checked = transfer.import_reference(tmp_path / "rotation.pt", dm, 1)
    assert ":rotation:" in done["extractor_id"] and checked["tolerance"] == pytest.approx(0.5 / (4 * 8), abs=1e-8)
    loaded = ex.load_extractor(dm, 1)
    assert loaded.task == "rotation" and loaded.sha256 == done["sha256"] and loaded.id == done["extractor_id"]


def test_a_shipped_classifier_needs_no_transfer(digits, tmp_path):
    with pytest.raises(BenchError, match="ships with bench"):
        transfer.export_reference(digits, 1, tmp_path / "digits.pt")
    assert not (tmp_path / "digits.pt").exists()


def test_the_command_line_round_trip(machine_a, cache_b, tmp_path, monkeypatch, capsys):
    _, _, cache_a, _, trained = machine_a
    sent = tmp_path / "sent.pt"
    monkeypatch.setenv("BENCH_CACHE", str(cache_a))
    main(["export", str(sent), *OVERRIDES])
    out = capsys.readouterr().out
    assert f"exported {trained.id} to {sent}" in out and trained.sha256[:12] in out
    monkeypatch.setenv("BENCH_CACHE", str(cache_b))
    main(["import", str(sent), *OVERRIDES])
    out = capsys.readouterr().out
    assert f"{sent} -> {cache_b / 'classifiers'}" in out and ": written" in out
    assert f"test accuracy recorded {trained.record()['test_accuracy']}, measured here" in out
    assert ex.file_sha256(next((cache_b / "classifiers").glob("*.pt"))) == trained.sha256
    with pytest.raises(SystemExit) as stop:  # the same file for another protocol version
        main(["import", str(sent), *OVERRIDES, "protocol.version=1"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "protocol version mismatch" in err
