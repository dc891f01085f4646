"""Standard Inception-v3 FID, computed only when its weights file is already on disk.

torchmetrics' `FrechetInceptionDistance(feature=2048)` builds torch-fidelity's
`FeatureExtractorInceptionV3`, which downloads its weights when given no path; we always pass
the local file, and skip (saying why) when it is absent — never a network call.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from bench.core.errors import BenchError

WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
_BATCH = 64


def default_weights_path() -> Path:
    """`$TORCH_HOME/hub/checkpoints/<weights>` (TORCH_HOME defaults to ~/.cache/torch)."""
    home = os.environ.get("TORCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torch"
    return Path(home) / "hub" / "checkpoints" / WEIGHTS_NAME


def to_inception_input(images: torch.Tensor, levels: int) -> torch.Tensor:
    """uint8 levels `[N, C, H, W]` -> uint8 0..255 RGB `[N, 3, H, W]` (grey repeated to 3 channels).

    Resizing to 299x299 is left to torchmetrics' extractor, as for any FID computed with it.
    """
    x = torch.round(images.to(torch.float32) * (255.0 / (levels - 1))).to(torch.uint8)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def inception_fid(
    real: torch.Tensor, fake: torch.Tensor, levels: int, weights_path: str | Path | None = None, feature: int = 2048
) -> tuple[float | None, str]:
    """`(fid, status)`: status is "computed" or "skipped: weights not found at <path>".

    `feature` is the Inception layer width; the protocol uses 2048 (standard FID), smaller
    layers exist for quick checks of the path.
    """
    path = Path(weights_path) if weights_path else default_weights_path()
    if not path.is_file():
        return None, f"skipped: weights not found at {path}"
    from torchmetrics.image.fid import FrechetInceptionDistance  # noqa: PLC0415  (optional: only where Inception weights are present)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metric = FrechetInceptionDistance(
                feature=feature, feature_extractor_weights_path=str(path), sync_on_compute=False
            )  # one process holds all images
    except Exception as err:  # truncated file, or weights of another network
        raise BenchError(
            f"{path}: expected torch-fidelity's Inception-v3 weights ({WEIGHTS_NAME}); "
            f"could not load them ({type(err).__name__})"
        ) from None
    with torch.no_grad():
        for images, is_real in ((real, True), (fake, False)):
            x = to_inception_input(images, levels)
            for start in range(0, len(x), _BATCH):
                metric.update(x[start : start + _BATCH], real=is_real)
        return float(metric.compute()), "computed"
