"""Reading CIFAR-10's "python version" batches without running code from the file.

The official batches are pickles: a plain `pickle.load` would execute whatever a crafted file
asks for. `read_batch` unpickles with an allow-list that resolves only what the real files
use (numpy's array reconstructor, `ndarray`, `dtype`, and latin-1 bytes as Python 3 writes them
at protocol 2); any other global stops the read.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.core.errors import BenchError

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # NumPy 1
    from numpy.core.multiarray import _reconstruct

IMAGE_BYTES = 3 * 32 * 32


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """What Python 3 writes for `bytes` in a protocol-2 pickle (`_codecs.encode(text, 'latin1')`),
    limited to that one codec."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r} is not allowed in a CIFAR batch")
    return text.encode("latin1")


#: (module, name) as written in the pickles (NumPy 1 and 2 spell the module differently) -> object.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_bytes,
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch") from None


def read_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One CIFAR-10 batch file -> (images uint8 `[N, 3, 32, 32]`, labels int64 `[N]`)."""
    try:
        with open(path, "rb") as fh:
            # latin1: the official files were pickled by Python 2 (as torchvision reads them)
            batch = _ArraysOnly(fh, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise BenchError(f"{path}: expected a CIFAR-10 python batch, could not read it ({err})") from None
    data = batch.get("data") if isinstance(batch, dict) else None
    labels = batch.get("labels") if isinstance(batch, dict) else None
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == IMAGE_BYTES
        and labels is not None
        and len(labels) == len(data)
    ):
        raise BenchError(
            f"{path}: expected a CIFAR-10 python batch (a dict with uint8 'data' [N, {IMAGE_BYTES}] and N 'labels')"
        )
    images = torch.from_numpy(np.ascontiguousarray(data)).view(-1, 3, 32, 32)
    return images, torch.as_tensor(np.asarray(labels, dtype=np.int64))
