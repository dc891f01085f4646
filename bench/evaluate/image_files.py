"""Evaluated samples on disk: `samples.npz`, the `samples.png` grid, and folders of PNG images.

Levels map to 8-bit intensities as `round(v * 255 / (levels - 1))` and back as
`round(p * (levels - 1) / 255)`, so a sample written as PNG reads back as the same levels.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.utils import make_grid

from bench.core.atomic import write_bytes_atomic
from bench.core.errors import BenchError
from bench.data.spec import DatasetSpec

SAMPLES_NAME = "samples.npz"
GRID_NAME = "samples.png"
CLASS_GRID_NAME = "samples_by_class.png"  # conditional runs: one row per class


def to_bytes(images: torch.Tensor, levels: int) -> torch.Tensor:
    """uint8 levels -> uint8 0..255, same shape."""
    return torch.round(images.to(torch.float32) * (255.0 / (levels - 1))).to(torch.uint8)


def save_samples(run_dir: Path, samples: torch.Tensor, levels: int, labels: torch.Tensor | None = None) -> Path:
    """Write uint8 `[N, C, H, W]` samples (with their level count, and the int64 `[N]` labels they
    were asked for on a conditional run) to `run_dir/samples.npz`."""
    path = Path(run_dir) / SAMPLES_NAME
    buffer = io.BytesIO()
    arrays = {"images": samples.numpy(), "levels": np.int64(levels)}
    if labels is not None:
        arrays["labels"] = labels.cpu().numpy().astype(np.int64)
    np.savez_compressed(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def load_samples(path: Path, spec: DatasetSpec) -> torch.Tensor:
    """uint8 `[N, C, H, W]` samples from a `samples.npz`, checked against the dataset's shape."""
    try:
        with np.load(path, allow_pickle=False) as data:
            images, levels = data["images"], int(data["levels"])
    except Exception as err:  # truncated zip, random bytes, pickled objects, missing arrays
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
        raise BenchError(
            f"{path}: expected a samples.npz with 'images' and 'levels' ({type(err).__name__}: {reason})"
        ) from None
    if images.dtype != np.uint8 or tuple(images.shape[1:]) != spec.shape or levels != spec.levels:
        raise BenchError(
            f"{path}: expected uint8 images of shape [N, {', '.join(map(str, spec.shape))}] with "
            f"{spec.levels} levels, found {images.dtype} {list(images.shape)} with {levels} levels"
        )
    return torch.from_numpy(images)


def load_labels(path: Path, n: int) -> torch.Tensor | None:
    """The int64 `[n]` labels a conditional run's samples were asked for, or None (unconditional run,
    or a file written before protocol version 3)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            labels = data["labels"] if "labels" in data.files else None
    except Exception:  # unreadable files are reported by load_samples
        return None
    if labels is None:
        return None
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise BenchError(f"{path}: expected integer labels of shape [{n}], found {labels.dtype} {list(labels.shape)}")
    return torch.from_numpy(labels.astype(np.int64))


def save_class_grid(
    path: Path, samples: torch.Tensor, labels: torch.Tensor, levels: int, num_classes: int, per_class: int = 10
) -> Path:
    """A PNG grid with one row per class: the first `per_class` uint8 samples `[N, C, H, W]` whose
    label (int64 `[N]`) is that class; a class with fewer samples leaves its row's end blank."""
    blank = torch.full((1, *samples.shape[1:]), levels - 1, dtype=torch.uint8)
    rows = []
    for c in range(num_classes):
        mine = samples[labels.cpu() == c][:per_class]
        rows.append(torch.cat([mine, blank.expand(per_class - len(mine), *samples.shape[1:])]))
    x = to_bytes(torch.cat(rows), levels)
    grid = make_grid(x, nrow=per_class, padding=1, pad_value=128)
    array = grid.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array[:, :, 0] if samples.shape[1] == 1 else array).save(buffer, format="PNG")
    write_bytes_atomic(Path(path), buffer.getvalue())
    return Path(path)


def save_grid(path: Path, samples: torch.Tensor, levels: int, count: int = 64) -> Path:
    """A PNG grid of the first `count` uint8 samples `[N, C, H, W]`."""
    x = to_bytes(samples[:count], levels)
    grid = make_grid(x, nrow=int(np.ceil(np.sqrt(len(x)))), padding=1, pad_value=128)
    array = grid.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array[:, :, 0] if samples.shape[1] == 1 else array).save(buffer, format="PNG")
    write_bytes_atomic(Path(path), buffer.getvalue())
    return Path(path)


def read_png_folder(folder: Path, spec: DatasetSpec) -> torch.Tensor:
    """Every `*.png` in `folder` (sorted by name) as uint8 levels `[N, C, H, W]` for `spec`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchError(f"--images {folder}: expected a folder of PNG images")
    files = sorted(folder.glob("*.png"))
    if not files:
        raise BenchError(f"--images {folder}: expected PNG images ({spec.height}x{spec.width}), found none")
    mode = "L" if spec.channels == 1 else "RGB"
    images = []
    for file in files:
        try:
            with Image.open(file) as img:
                array = np.asarray(img.convert(mode))
        except (OSError, UnidentifiedImageError):
            raise BenchError(f"{file}: expected a readable PNG image") from None
        if array.shape[:2] != (spec.height, spec.width):
            raise BenchError(
                f"{file}: expected a {spec.height}x{spec.width} image for dataset {spec.name}, "
                f"found {array.shape[0]}x{array.shape[1]}"
            )
        images.append(array.reshape(spec.height, spec.width, spec.channels))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).to(torch.float32)
    return torch.round(x * ((spec.levels - 1) / 255.0)).to(torch.uint8).contiguous()


def write_png_folder(folder: Path, samples: torch.Tensor, levels: int) -> list[Path]:
    """One PNG per uint8 sample `[N, C, H, W]` (the inverse of `read_png_folder`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x = to_bytes(samples, levels).permute(0, 2, 3, 1).numpy()
    paths = []
    for i, array in enumerate(x):
        path = folder / f"{i:05d}.png"
        Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(path)
        paths.append(path)
    return paths
