"""The `folder` source from generated PNG and JPEG files: spec, labels, cache, bad input."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch

import bench.data.image_folder as image_folder
from bench.config.schema import validate
from bench.core.errors import BenchError, ConfigError
from bench.data import ImageDataModule
from bench.data.split import split_count
from tests.helpers.configs import compose_config
from tests.helpers.fake_data_roots import random_image, write_image, write_tree

SIZE = 10


def _load(root: Path, cache: Path, **kw) -> ImageDataModule:
    args = {"val_size": 2, "test_size": 2, "size": SIZE, "channels": 3, **kw}
    return ImageDataModule("folder", root=str(root), cache_dir=str(cache), **args)


def test_folder_spec_labels_and_one_warning_for_the_unreadable_file(tmp_path):
    write_tree(tmp_path / "imgs")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm = _load(tmp_path / "imgs", tmp_path / "cache")
    messages = [str(w.message) for w in caught if "unreadable" in str(w.message)]
    assert len(messages) == 1 and "skipped 1 unreadable image(s): dogs/broken.png" in messages[0]
    spec = dm.spec
    assert (spec.channels, spec.height, spec.width, spec.levels, spec.num_classes) == (3, SIZE, SIZE, 256, 2)
    assert spec.train_size + spec.val_size + spec.test_size == 8
    labels = torch.cat([dm.train_labels, dm.val_labels, dm.test_labels])
    assert labels.bincount().tolist() == [4, 4]  # cats (incl. cats/deep) = 0, dogs (incl. nested) = 1
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):  # listed again when a cache is reused
        grey = _load(tmp_path / "imgs", tmp_path / "cache", channels=1)
    assert grey.spec.channels == 1 and grey.train_images.shape[1:] == (1, SIZE, SIZE)
    assert not any(p.suffix == ".npz" for p in (tmp_path / "imgs").rglob("*"))  # the cache stays out of the folder


def test_resize_keeps_aspect_and_crops_the_centre(tmp_path):
    # a wide image in three vertical bands: after resizing the short side to 10 (-> 10x50) the centre
    # crop keeps the middle band whole and none of the outer ones
    bands = torch.zeros(3, 20, 100, dtype=torch.uint8)
    bands[0, :, :30], bands[1, :, 30:70], bands[2, :, 70:] = 255, 255, 255
    (tmp_path / "imgs").mkdir()
    write_image(bands, tmp_path / "imgs" / "bands.png")
    image = image_folder.folder(str(tmp_path / "imgs"), size=SIZE, cache_dir=str(tmp_path / "cache")).images[0]
    assert image.shape == (3, SIZE, SIZE)
    assert bool((image[1] == 255).all()) and int(image[0].max()) == 0 and int(image[2].max()) == 0


def test_cache_is_reused_and_rebuilt_when_a_file_changes(tmp_path, monkeypatch):
    root, cache = tmp_path / "imgs", tmp_path / "cache"
    write_tree(root)
    calls = []
    real = image_folder.decode
    monkeypatch.setattr(image_folder, "decode", lambda *a: calls.append(a[0]) or real(*a))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = image_folder.folder(str(root), size=SIZE, cache_dir=str(cache))
        assert len(calls) == 9 and len(list(cache.iterdir())) == 1
        again = image_folder.folder(str(root), size=SIZE, cache_dir=str(cache))
        assert len(calls) == 9 and torch.equal(again.images, first.images)  # nothing decoded
        changed = root / "dogs" / "e.png"
        write_image(torch.zeros(3, 12, 12, dtype=torch.uint8), changed)
        os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
        rebuilt = image_folder.folder(str(root), size=SIZE, cache_dir=str(cache))
    assert len(calls) == 18 and len(list(cache.iterdir())) == 1  # decoded again, replacing the cache
    assert not torch.equal(rebuilt.images, first.images) and rebuilt.images.shape == first.images.shape


def test_images_at_the_top_level_make_an_unlabelled_set(tmp_path):
    for i in range(6):
        write_image(random_image(1, 9, 9, seed=i), tmp_path / f"{i}.png")
    dm = _load(tmp_path, tmp_path / "cache", channels=1)
    assert dm.spec.num_classes == 0 and int(dm.train_labels.abs().sum()) == 0


def test_no_readable_images_or_too_few_for_the_split_say_so(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    (tmp_path / "empty" / "bad.jpg").write_bytes(b"not a jpeg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(BenchError, match="no readable PNG/JPEG images found.*1 candidate file.*1 unreadable"):
            _load(tmp_path / "empty", tmp_path / "cache")
    (tmp_path / "few").mkdir()
    for i in range(3):
        write_image(random_image(3, 8, 8, seed=i), tmp_path / "few" / f"{i}.png")
    with pytest.raises(ConfigError, match=f"the set has 3 image.s. at {tmp_path / 'few'}"):
        _load(tmp_path / "few", tmp_path / "cache")
    with pytest.raises(BenchError, match="dataset.root=.*not a folder"):
        _load(tmp_path / "missing", tmp_path / "cache")
    with pytest.raises(ConfigError, match="dataset.channels=2: expected 1 .grey. or 3 .RGB."):
        _load(tmp_path / "few", tmp_path / "cache", channels=2)


def _flat_folder(root: Path, n: int) -> Path:
    root.mkdir()
    for i in range(n):
        write_image(random_image(1, 6, 6, seed=i), root / f"{i:03d}.png")
    return root


def _folder_defaults(root: Path, cache: Path, *extra: str) -> ImageDataModule:
    """`dataset=folder` as bench-train composes and validates it, with only the root and size set."""
    cfg = compose_config(
        [
            "dataset=folder",
            f"dataset.root={root}",
            "dataset.size=6",
            "dataset.channels=1",
            f"dataset.cache_dir={cache}",
            *extra,
        ]
    )
    validate(cfg)
    return ImageDataModule(batch_size=8, **cfg.dataset)


def test_folder_defaults_split_a_small_folder_by_fraction(tmp_path):
    dm = _folder_defaults(_flat_folder(tmp_path / "imgs", 40), tmp_path / "cache")
    spec = dm.spec
    assert (spec.train_size, spec.val_size, spec.test_size) == (28, 4, 8)  # 10% val, 20% test
    assert torch.equal(torch.cat([dm.split.train, dm.split.val, dm.split.test]).sort().values, torch.arange(40))
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 1, 6, 6)
    counted = _folder_defaults(tmp_path / "imgs", tmp_path / "cache", "dataset.val_size=3", "dataset.test_size=5")
    assert (counted.spec.val_size, counted.spec.test_size) == (3, 5)  # a count stays a count


def test_folder_too_small_to_split_gets_one_line(tmp_path):
    root = _flat_folder(tmp_path / "two", 2)
    with pytest.raises(ConfigError) as err:
        _folder_defaults(root, tmp_path / "cache")
    message = str(err.value)
    assert "\n" not in message and message.startswith("dataset.val_size/test_size=(0.1, 0.2): expected sizes")
    assert f"the set has 2 image(s) at {root}, which gives 1 val + 1 test" in message
    assert "at least 3 images" in message
    root = _flat_folder(tmp_path / "three", 3)
    assert _folder_defaults(root, tmp_path / "cache").spec.train_size == 1


@pytest.mark.parametrize("value", [0, -0.5, 1.5, 2.25])
def test_sizes_that_are_neither_counts_nor_fractions_name_the_key(value, tmp_path):
    with pytest.raises(
        ConfigError,
        match=rf"^dataset.test_size={value}: expected a count \(an integer >= 1\) "
        r"or a fraction in \(0, 1\) of the images$",
    ):
        split_count(value, 100, "dataset.test_size")
    cfg = compose_config(["dataset=folder", f"dataset.val_size={value}"])
    with pytest.raises(BenchError, match=r"^dataset.val_size=.*: expected a count .* or a fraction in \(0, 1\)"):
        validate(cfg)


def test_fractions_round_half_up_and_never_reach_zero():
    assert [split_count(v, 884, "k") for v in (0.1, 0.2, 0.0001, 150, 150.0)] == [88, 177, 1, 150, 150]
    with pytest.raises(ConfigError, match="dataset.val_size=True"):
        split_count(True, 10, "dataset.val_size")
