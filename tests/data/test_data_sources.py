"""MNIST, Fashion-MNIST and CIFAR-10 from small fake roots written here in torchvision's formats."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from bench.core.errors import BenchError, ConfigError
from bench.data import ImageDataModule
from bench.data.cifar_batches import read_batch
from bench.data.source_images import reduce_levels
from bench.data.torchvision_sources import CIFAR10_FILES, MNIST_FILES
from tests.helpers.fake_data_roots import N_TEST, N_TRAIN, write_cifar_root, write_mnist_root


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_style_sources_keep_the_official_test_split(tmp_path, name, folder):
    arrays = write_mnist_root(tmp_path, folder)
    dm = ImageDataModule(name, root=str(tmp_path), val_size=10, test_size=N_TEST, split_seed=3)
    spec = dm.spec
    assert (spec.channels, spec.height, spec.width, spec.levels, spec.num_classes) == (1, 28, 28, 256, 10)
    assert (spec.train_size, spec.val_size, spec.test_size) == (N_TRAIN - 10, 10, N_TEST)
    # test is exactly the official test file, in order; val and train come from the train file only
    assert torch.equal(dm.test_images[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"].astype(np.uint8)))
    assert torch.equal(dm.test_labels, torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]))
    train_file = torch.from_numpy(arrays["train-images-idx3-ubyte"].astype(np.uint8))
    assert torch.equal(torch.cat([dm.split.train, dm.split.val]).sort().values, torch.arange(N_TRAIN))
    assert torch.equal(dm.val_images[:, 0], train_file[dm.split.val])
    other = ImageDataModule(name, root=str(tmp_path), val_size=10, test_size=N_TEST, split_seed=4)
    assert not torch.equal(other.split.val, dm.split.val) and torch.equal(other.split.test, dm.split.test)


def test_cifar10_reads_the_python_batches_as_torchvision_does(tmp_path, monkeypatch):
    write_cifar_root(tmp_path)
    dm = ImageDataModule("cifar10", root=str(tmp_path), val_size=5, test_size=8)
    spec = dm.spec
    assert (spec.channels, spec.height, spec.width, spec.levels, spec.num_classes) == (3, 32, 32, 256, 10)
    assert (spec.train_size, spec.val_size, spec.test_size) == (35, 5, 8)
    # the same images and labels as torchvision's own reader (only its md5 check is patched out)
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda path, md5=None: Path(path).is_file())
    tv = tv_cifar.CIFAR10(str(tmp_path), train=False)
    assert torch.equal(dm.test_images, torch.from_numpy(tv.data).permute(0, 3, 1, 2))
    assert dm.test_labels.tolist() == list(tv.targets)


def test_a_crafted_cifar_pickle_does_not_run(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    crafted = pickle.dumps({"data": Exploit(), "labels": []}, protocol=2)
    path = tmp_path / "data_batch_1"
    path.write_bytes(crafted)
    with pytest.raises(BenchError, match="data_batch_1: expected a CIFAR-10 python batch.*system is not allowed"):
        read_batch(path)
    assert not marker.exists()
    pickle.loads(crafted)  # the same bytes through a plain unpickler do run: the check above is real
    assert marker.exists()


def test_test_size_may_take_a_seeded_subset_of_the_official_test_split(tmp_path):
    write_mnist_root(tmp_path)
    dm = ImageDataModule("mnist", root=str(tmp_path), val_size=10, test_size=5)
    assert dm.spec.test_size == 5 and bool((dm.split.test >= N_TRAIN).all())
    with pytest.raises(ConfigError, match=f"dataset.test_size=13: expected 1..{N_TEST}, the official test split"):
        ImageDataModule("mnist", root=str(tmp_path), val_size=10, test_size=N_TEST + 1)


def test_binarized_mnist_thresholds_at_128(tmp_path):
    arrays = write_mnist_root(tmp_path)
    dm = ImageDataModule("mnist", root=str(tmp_path), val_size=10, test_size=N_TEST, levels=2)
    assert dm.spec.levels == 2
    expected = torch.from_numpy((arrays["t10k-images-idx3-ubyte"] >= 128).astype(np.uint8))
    assert torch.equal(dm.test_images[:, 0], expected)
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 1, 256)
    assert torch.equal(reduce_levels(x, 4).flatten().bincount(), torch.full((4,), 64))


@pytest.mark.parametrize(
    "name,folder,files", [("mnist", "MNIST/raw", MNIST_FILES), ("cifar10", "cifar-10-batches-py", CIFAR10_FILES)]
)
def test_missing_files_give_one_message_with_path_files_and_remedy(tmp_path, name, folder, files):
    with pytest.raises(BenchError) as err:
        ImageDataModule(name, root=str(tmp_path / "nowhere"), val_size=5, test_size=5)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "nowhere" / folder) in message
    assert all(f in message for f in files) and "dataset.download=true" in message
    (tmp_path / folder).mkdir(parents=True)
    (tmp_path / folder / files[0]).write_bytes(b"")
    with pytest.raises(BenchError, match=f"missing {', '.join(files[1:])}"):
        ImageDataModule(name, root=str(tmp_path), val_size=5, test_size=5)
    if name == "mnist":
        for f in files[1:]:
            (tmp_path / folder / f"{f}.gz").write_bytes(b"")
        with pytest.raises(BenchError, match="their .gz archives are there: gunzip them"):
            ImageDataModule(name, root=str(tmp_path), val_size=5, test_size=5)


def test_options_a_source_does_not_take_are_named(tmp_path):
    with pytest.raises(BenchError, match="dataset.root='x': dataset 'digits' has no such option"):
        ImageDataModule("digits", root="x")
    write_mnist_root(tmp_path)
    with pytest.raises(ConfigError, match="dataset.levels=300: expected an integer from 2 to 256"):
        ImageDataModule("mnist", root=str(tmp_path), val_size=5, test_size=5, levels=300)


def test_a_family_trains_a_few_steps_on_fake_mnist(tmp_path):
    from bench.models.build import build_model

    write_mnist_root(tmp_path)
    pl.seed_everything(0)
    dm = ImageDataModule("mnist", root=str(tmp_path), val_size=8, test_size=N_TEST, batch_size=8)
    model = build_model(
        {
            "family": "cnn_decoder",
            "module": {"lr": 1e-3},
            "net": {"_target_": "bench.models.cnn_decoder.ConvVAENet", "latent_dim": 4, "hidden": 8},
        },
        dm.spec,
    )
    trainer = pl.Trainer(
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 3
    samples = model.sample(4, torch.Generator().manual_seed(0))
    assert samples.shape == (4, 1, 28, 28) and samples.dtype == torch.uint8


def test_download_goes_through_torchvision_only_when_asked(tmp_path, monkeypatch):
    import torchvision.datasets as tvd
    import torchvision.datasets.utils as tv_utils

    fetched = []

    def fake_fetch(url, download_root, filename=None, md5=None, **_):  # stands in for the network
        fetched.append((url, md5))
        write_cifar_root(Path(download_root))

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", fake_fetch)
    with pytest.raises(BenchError, match="dataset.download=true"):
        ImageDataModule("cifar10", root=str(tmp_path), val_size=5, test_size=8)
    assert fetched == []
    dm = ImageDataModule("cifar10", root=str(tmp_path), val_size=5, test_size=8, download=True)
    assert fetched == [(tvd.CIFAR10.url, tvd.CIFAR10.tgz_md5)] and dm.spec.test_size == 8
    ImageDataModule("cifar10", root=str(tmp_path), val_size=5, test_size=8, download=True)
    assert len(fetched) == 1  # files present: nothing fetched again

    monkeypatch.setattr(tvd.MNIST, "download", lambda self: fetched.append("mnist") or write_mnist_root(tmp_path))
    dm = ImageDataModule("mnist", root=str(tmp_path), val_size=5, test_size=N_TEST, download=True)
    assert fetched.count("mnist") == 1 and dm.spec.train_size == N_TRAIN - 5


def test_where_files_come_from_or_are_cached_does_not_change_the_run_folder(tmp_path):
    from bench.config.run_folder import config_hash
    from tests.helpers.configs import compose_config

    def run_hash(dataset: str, *extra: str) -> str:
        return config_hash(compose_config([f"dataset={dataset}", "dataset.root=/pics", *extra]))

    assert run_hash("mnist") == run_hash("mnist", "dataset.download=true")
    assert run_hash("folder") == run_hash("folder", "dataset.cache_dir=/elsewhere")
    # a folder's path says which images are used
    assert run_hash("folder") != run_hash("folder", "dataset.root=/other-pics") != run_hash("folder", "dataset.size=28")
