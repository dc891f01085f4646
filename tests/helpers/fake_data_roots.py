"""Small fake dataset roots, written in the formats the real files use (torchvision's layout,
PNG/JPEG trees), for the data-source tests and the every-config test."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.data.torchvision_sources import CIFAR10_FILES

N_TRAIN, N_TEST = 40, 12


def _idx(path: Path, array: np.ndarray) -> None:
    """An idx file as MNIST ships it: magic (0, 0, uint8 type 0x08, ndim), big-endian dims, bytes."""
    header = np.array([0x0800 + array.ndim, *array.shape], dtype=">i4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist_root(root: Path, folder: str = "MNIST", seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (N_TRAIN, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, N_TRAIN),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (N_TEST, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, N_TEST),
    }
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for name, array in arrays.items():
        _idx(raw / name, array)
    return arrays


def write_cifar_root(root: Path, per_batch: int = 8, seed: int = 0) -> dict[str, tuple[np.ndarray, list[int]]]:
    """cifar-10-batches-py/ with Python-2-style pickled dicts, as in the official archive."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in CIFAR10_FILES:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        batches[name] = (data, labels)
        with open(folder / name, "wb") as fh:
            pickle.dump(
                {
                    "batch_label": name,
                    "labels": labels,
                    "data": data,
                    "filenames": [f"{i}.png" for i in range(per_batch)],
                },
                fh,
                protocol=2,
            )
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)], "num_vis": 3072}, fh, protocol=2)
    return batches


def random_image(channels: int, h: int, w: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (channels, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def write_image(image: torch.Tensor, path: Path) -> None:
    """uint8 `[C, H, W]` (C 1 or 3) -> a PNG or JPEG file, by the path's suffix."""
    array = image.permute(1, 2, 0).numpy()
    Image.fromarray(array[:, :, 0] if image.shape[0] == 1 else array).save(path)


def write_tree(root: Path, broken: bool = True) -> None:
    """Two classes (one nested deeper), grey and RGB, odd sizes, PNG and JPEG, plus a text and a broken file."""
    files = {
        "cats/a.png": (3, 20, 31),
        "cats/b.jpg": (1, 17, 13),
        "cats/c.PNG": (1, 11, 11),
        "cats/deep/d.jpeg": (3, 15, 40),
        "dogs/e.png": (3, 12, 12),
        "dogs/f.jpg": (3, 33, 21),
        "dogs/nested/more/g.png": (1, 10, 19),
        "dogs/h.png": (3, 14, 9),
    }
    for i, (name, shape) in enumerate(files.items()):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(random_image(*shape, seed=i), path)
    (root / "notes.txt").write_text("not an image")
    if broken:
        (root / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")


def fake_root_overrides(dataset: str, tmp_path: Path) -> list[str]:
    """Overrides that point `dataset` (a config name) at a fake root written under `tmp_path`."""
    root = tmp_path / f"fake-{dataset}"
    if dataset in ("mnist", "fashion_mnist"):
        write_mnist_root(root, "MNIST" if dataset == "mnist" else "FashionMNIST")
    elif dataset == "cifar10":
        write_cifar_root(root)
    elif dataset == "folder":
        write_tree(root, broken=False)
    else:
        return []
    return [f"dataset.root={root}", "dataset.val_size=2", "dataset.test_size=2"]
