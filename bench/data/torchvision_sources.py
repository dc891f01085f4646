"""MNIST, Fashion-MNIST and CIFAR-10 from `dataset.root`, in torchvision's own file layout.

Nothing is fetched unless `download=True`; then torchvision downloads and checks the official
archives. MNIST-style idx files are read by torchvision itself (plain binary, no code in them);
CIFAR-10's pickled batches are read by `cifar_batches.read_batch` with an allow-list, never by a
plain `pickle.load`. The official test split is kept as the test split (`test_from`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from bench.core.errors import BenchError, ConfigError
from bench.data.cifar_batches import read_batch
from bench.data.source_images import SourceImages, reduce_levels

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_FILES = (*CIFAR10_TRAIN, "test_batch")


def _root(root: str | None, name: str) -> Path:
    if root is None or str(root) == "":
        raise ConfigError(
            "dataset.root",
            root,
            f"the folder that holds {name} in torchvision's layout (e.g. dataset.root=data/torchvision)",
        )
    return Path(root).expanduser()


def _require(folder: Path, files: tuple[str, ...], name: str, root: Path) -> None:
    """One message naming where we looked, what is expected there and how to get it."""
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        state = (
            "dataset.root does not exist"
            if not root.is_dir()
            else "the folder does not exist"
            if not folder.is_dir()
            else f"missing {', '.join(missing)}"
        )
        if all((folder / f"{f}.gz").is_file() for f in missing):
            state += "; their .gz archives are there: gunzip them, or dataset.download=true extracts them offline"
        raise BenchError(
            f"dataset.root={str(root)!r}: {name} not found in {folder.resolve()} ({state}); expected there: "
            f"{', '.join(files)}. Set dataset.download=true on a machine with internet, or copy torchvision's "
            f"{folder.relative_to(root)}/ folder into dataset.root from a machine that has it."
        )


def _torchvision_mnist(cls_name: str, root: str | None, download: bool, levels: int) -> SourceImages:
    import torchvision.datasets as tvd  # noqa: PLC0415  (torchvision, heavy: only these sources need it)

    cls = getattr(tvd, cls_name)
    base = _root(root, cls_name)
    raw = base / cls_name / "raw"
    if not download:
        _require(raw, MNIST_FILES, cls_name, base)
    # one download (torchvision fetches both splits' files at once), then both splits from disk
    parts = [cls(str(base), train=train, download=download and train) for train in (True, False)]
    images = torch.cat([p.data for p in parts]).unsqueeze(1).contiguous()
    labels = torch.cat([p.targets for p in parts]).to(torch.int64)
    return SourceImages(
        reduce_levels(images, levels),
        labels,
        levels=levels,
        num_classes=10,
        test_from=len(parts[0].data),
        where=str(raw),
    )


def mnist(root: str | None = None, download: bool = False, levels: int = 256) -> SourceImages:
    """MNIST from `root/MNIST/raw/`: 60,000 train + 10,000 test images, 1x28x28.

    `levels=2` is binarized MNIST by a fixed threshold (value >= 128 -> 1); see `reduce_levels`.
    """
    return _torchvision_mnist("MNIST", root, download, levels)


def fashion_mnist(root: str | None = None, download: bool = False, levels: int = 256) -> SourceImages:
    """Fashion-MNIST from `root/FashionMNIST/raw/`: 60,000 train + 10,000 test images, 1x28x28."""
    return _torchvision_mnist("FashionMNIST", root, download, levels)


def cifar10(root: str | None = None, download: bool = False, levels: int = 256) -> SourceImages:
    """CIFAR-10 from `root/cifar-10-batches-py/`: 50,000 train + 10,000 test images, 3x32x32."""
    base = _root(root, "CIFAR-10")
    folder = base / CIFAR10_FOLDER
    if download and not all((folder / f).is_file() for f in CIFAR10_FILES):
        from torchvision.datasets import CIFAR10  # noqa: PLC0415  (torchvision, heavy: only CIFAR-10 needs it)
        from torchvision.datasets.utils import download_and_extract_archive  # noqa: PLC0415  (torchvision, heavy: only CIFAR-10 needs it)

        download_and_extract_archive(CIFAR10.url, str(base), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)
    _require(folder, CIFAR10_FILES, "CIFAR-10", base)
    train = [read_batch(folder / f) for f in CIFAR10_TRAIN]
    test_images, test_labels = read_batch(folder / "test_batch")
    images = torch.cat([b[0] for b in train] + [test_images])
    labels = torch.cat([b[1] for b in train] + [test_labels])
    if labels.numel() and not 0 <= int(labels.min()) <= int(labels.max()) <= 9:
        raise BenchError(f"{folder}: expected CIFAR-10 labels 0..9, found {int(labels.min())}..{int(labels.max())}")
    return SourceImages(
        reduce_levels(images, levels),
        labels,
        levels=levels,
        num_classes=10,
        test_from=len(images) - len(test_images),
        where=str(folder),
    )
