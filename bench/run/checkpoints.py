"""Checkpoints on disk: read without running code, written atomically, set aside when unreadable.

A run folder may come from someone else, so a checkpoint is read with `weights_only=True`
(tensors and plain containers only: a pickled object that would run code is refused). Writes go
to a temp file in the same folder and are renamed over the final name, so a full disk or a kill
never leaves half a checkpoint under a name the next run would trust.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from bench.core.atomic import write_bytes_atomic
from bench.core.errors import BenchError

#: Plain-data types a checkpoint may hold beyond tensors: numpy arrays and dtypes, as in a saved
#: numpy RNG state. An object array still needs its elements' globals, which stay refused.
SAFE_GLOBALS = [
    np.ndarray,
    np.dtype,
    np.dtypes.UInt32DType,
    np.dtypes.Float64DType,
    np.dtypes.Int64DType,
    getattr(np, "_core", np).multiarray._reconstruct,
]


def load_checkpoint(path: Path, map_location: Any = "cpu") -> dict:
    """The checkpoint dict at `path`, read with `weights_only=True`; one `BenchError` line naming
    the file if it is missing, truncated, not a checkpoint, or holds objects that would run code."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise BenchError(f"{path}: checkpoint not found") from None
    except Exception as err:  # truncated zip, random bytes, or a pickle the safe loader refuses
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise BenchError(
            f"{path}: expected a PyTorch checkpoint of tensors and plain values; "
            f"could not read it safely ({type(err).__name__}: {reason})"
        ) from None
    if not isinstance(ckpt, dict):
        raise BenchError(f"{path}: expected a PyTorch checkpoint (a dict), found {type(ckpt).__name__}")
    return ckpt


def set_aside(path: Path) -> Path:
    """Rename `path` to `<name>.unreadable[.N]` beside it (never deleted: it may be evidence)."""
    path = Path(path)
    target = path.with_name(f"{path.name}.unreadable")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.unreadable.{n}")
        n += 1
    path.rename(target)
    return target


def save_atomic(obj: Any, path: Path) -> None:
    """`torch.save` to a temp file in the target folder, then rename over `path`."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes_atomic(Path(path), buffer.getvalue())


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO, but each file appears whole or not at all, and loads
    with `weights_only=True`."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        save_atomic(checkpoint, Path(path))

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict:
        return load_checkpoint(Path(path), map_location=map_location or "cpu")
