import pytest
import torch

from bench.core.errors import BenchError, ConfigError
from bench.data import ImageDataModule, quantize, to_unit
from bench.data.split import seeded_split


def test_digits_split_sizes_dtypes_and_levels():
    dm = ImageDataModule("digits")
    spec = dm.spec
    assert (spec.channels, spec.height, spec.width, spec.levels) == (1, 8, 8, 17)
    assert (spec.train_size, spec.val_size, spec.test_size) == (1197, 150, 450)
    for split in ("train", "val", "test"):
        images = dm.images(split)
        assert images.dtype == torch.uint8 and images.shape[1:] == (1, 8, 8)
        assert int(images.max()) == 16 and int(images.min()) == 0
    # Disjoint and complete.
    all_idx = torch.cat([dm.split.train, dm.split.val, dm.split.test])
    assert torch.equal(all_idx.sort().values, torch.arange(1797))


def test_integer_sizes_keep_the_splits_every_record_was_measured_on():
    # the shipped digits classifier and every recorded number were measured on these exact splits
    assert ImageDataModule("digits").split.sha256().startswith("e67d35b51405ed687bcdccec")
    assert ImageDataModule("procedural", val_size=64, test_size=64).split.sha256().startswith("791cb2664b1605819e")


def test_split_depends_on_its_own_seed_only():
    a, b = seeded_split(100, 10, 20, seed=0), seeded_split(100, 10, 20, seed=0)
    c = seeded_split(100, 10, 20, seed=1)
    assert a.sha256() == b.sha256() != c.sha256()


def test_batches_index_whole_tensors():
    dm = ImageDataModule("procedural", batch_size=32, val_size=64, test_size=64)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 1, 8, 8) and x.dtype == torch.uint8 and y.shape == (32,)
    val_total = sum(len(b[0]) for b in dm.val_dataloader())
    assert val_total == dm.spec.val_size


@pytest.mark.parametrize("levels", [2, 4, 17, 256])
def test_quantize_round_trip(levels):
    x = torch.randint(0, levels, (5, 1, 4, 4), dtype=torch.uint8)
    assert torch.equal(quantize(to_unit(x, levels), levels), x)
    assert torch.equal(quantize(x.long(), levels), x)


def test_quantize_clamps_and_rounds():
    out = quantize(torch.tensor([-0.3, 0.0, 0.49 / 16, 0.51 / 16, 1.7]), 17)
    assert out.tolist() == [0, 0, 0, 1, 16] and out.dtype == torch.uint8


def test_bad_dataset_input_names_the_key():
    with pytest.raises(
        BenchError, match="dataset.name=.nope.*cifar10, digits, fashion_mnist, folder, mnist, procedural"
    ):
        ImageDataModule("nope")
    with pytest.raises(ConfigError, match="model.batch_size"):
        ImageDataModule("procedural", batch_size=0, val_size=64, test_size=64)
    with pytest.raises(ConfigError, match="levels=1: expected an integer >= 2"):
        ImageDataModule("procedural", val_size=64, test_size=64, source_args={"levels": 1})
