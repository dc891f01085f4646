"""`folder`: any directory of PNG/JPEG images as a dataset, decoded once and cached.

Images are found recursively, decoded to 1 or 3 channels, resized (shorter side
to `size`, antialiased) and centre-cropped to `size` x `size`. When every image sits in a
sub-folder, the top-level sub-folder names are the classes; otherwise the set is unlabelled.

The decoded uint8 tensor is cached in `cache_dir` (beside the results, never inside the user's
folder) with a fingerprint of the files (relative paths, sizes, modification times) and the
decoding settings; a load whose fingerprint differs decodes again and replaces the cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.core.atomic import write_bytes_atomic
from bench.core.errors import BenchError, ConfigError
from bench.data.source_images import SourceImages, reduce_levels

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CACHE_VERSION = 1  # bump when decoding changes, so old caches are not reused
_SHOWN_SKIPPED = 10


def image_files(root: Path) -> list[Path]:
    """PNG/JPEG files under `root`, recursively, in a fixed (sorted) order."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def fingerprint(root: Path, files: list[Path], size: int, channels: int) -> str:
    """sha256 of the settings and each file's relative path, size and modification time."""
    h = hashlib.sha256(json.dumps({"version": CACHE_VERSION, "size": size, "channels": channels}).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def class_names(root: Path, files: list[Path]) -> list[str]:
    """Top-level sub-folder names when every image is inside one, else [] (unlabelled)."""
    parts = [f.relative_to(root).parts for f in files]
    if not parts or any(len(p) == 1 for p in parts):
        return []
    return sorted({p[0] for p in parts})


def decode(path: Path, size: int, channels: int) -> torch.Tensor:
    """One image file -> uint8 `[channels, size, size]` (raises on an unreadable file).

    Pillow decodes (torchvision's own decoders are deprecated from 0.29 on) and converts any mode
    (palette, grey + alpha, 16-bit, CMYK) to L or RGB; torchvision resizes and crops the tensor.
    """
    from torchvision.transforms.v2.functional import center_crop, resize  # noqa: PLC0415  (torchvision, heavy: only a folder of images of another size needs it)

    with Image.open(path) as im:
        array = np.asarray(im.convert("L" if channels == 1 else "RGB"))
    image = torch.from_numpy(array.copy()).view(array.shape[0], array.shape[1], channels).permute(2, 0, 1)
    return center_crop(resize(image, [size], antialias=True), [size, size])


def _decode_all(root: Path, files: list[Path], size: int, channels: int):
    names = class_names(root, files)
    index = {n: i for i, n in enumerate(names)}
    images, labels, skipped = [], [], []
    for f in files:
        try:
            images.append(decode(f, size, channels))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):  # what Pillow raises on bad files
            skipped.append(f.relative_to(root).as_posix())
            continue
        labels.append(index[f.relative_to(root).parts[0]] if names else 0)
    stacked = torch.stack(images) if images else torch.empty(0, channels, size, size, dtype=torch.uint8)
    return stacked, torch.tensor(labels, dtype=torch.int64), names, skipped


def _read_cache(path: Path, key: str):
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"]) != key:
                return None
            return (
                torch.from_numpy(z["images"]),
                torch.from_numpy(z["labels"]),
                [str(n) for n in z["class_names"]],
                [str(s) for s in z["skipped"]],
            )
    except (OSError, KeyError, ValueError):  # absent or damaged: decode again
        return None


def _write_cache(path: Path, key: str, images, labels, names, skipped) -> None:
    buf = io.BytesIO()
    np.savez(
        buf,
        fingerprint=np.array(key),
        images=images.numpy(),
        labels=labels.numpy(),
        class_names=np.array(names, dtype=str),
        skipped=np.array(skipped, dtype=str),
    )
    write_bytes_atomic(path, buf.getvalue())


def cache_path(cache_dir: Path, root: Path, size: int, channels: int) -> Path:
    """One cache file per (folder, size, channels): a changed folder replaces it, not adds to it."""
    tag = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    return cache_dir / f"folder-{root.name}-{tag}-{size}px-{channels}ch.npz"


def folder(
    root: str | None = None,
    size: int | None = None,
    channels: int = 3,
    levels: int = 256,
    cache_dir: str = "results/data_cache",
) -> SourceImages:
    """Every PNG/JPEG under `root` as uint8 `[N, channels, size, size]` (see the module docstring)."""
    if root is None or str(root) == "":
        raise ConfigError("dataset.root", root, "a folder of PNG/JPEG images (searched recursively)")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ConfigError("dataset.size", size, "a positive integer: images are resized and centre-cropped to it")
    if channels not in (1, 3):
        raise ConfigError("dataset.channels", channels, "1 (grey) or 3 (RGB)")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise BenchError(f"dataset.root={str(root)!r}: not a folder; expected a folder of PNG/JPEG images")
    files = image_files(base)
    key = fingerprint(base, files, size, channels)
    cache = cache_path(Path(cache_dir), base, size, channels)
    cached = _read_cache(cache, key)
    if cached is None:
        cached = _decode_all(base, files, size, channels)
        if len(cached[0]):
            _write_cache(cache, key, *cached)
    images, labels, names, skipped = cached
    if skipped:
        shown = ", ".join(skipped[:_SHOWN_SKIPPED]) + (" …" if len(skipped) > _SHOWN_SKIPPED else "")
        warnings.warn(f"dataset.root={str(root)!r}: skipped {len(skipped)} unreadable image(s): {shown}", stacklevel=2)
    if not len(images):
        raise BenchError(
            f"dataset.root={str(root)!r}: no readable PNG/JPEG images found (searched recursively "
            f"for {', '.join(IMAGE_SUFFIXES)}; {len(files)} candidate file(s), {len(skipped)} unreadable)"
        )
    return SourceImages(reduce_levels(images, levels), labels, levels=levels, num_classes=len(names), where=str(base))
