"""Bits per dimension on a held-out split, through the module's own likelihood.

Kinds: "exact" (autoregressive), "bound" (VAE: the headline is the IWAE bound with the
protocol's k when the module offers `iwae_bits_per_dim(x, k)`, the ELBO is reported beside it),
"n/a" for models without a likelihood.
"""

from __future__ import annotations

import torch

from bench.errors import BenchError

_BATCH = 256


@torch.no_grad()
def _mean_over_batches(fn, images: torch.Tensor, device: torch.device) -> float:
    total = torch.zeros((), dtype=torch.float64, device=device)
    for start in range(0, len(images), _BATCH):
        total += fn(images[start : start + _BATCH].to(device)).double().sum()
    return (total / len(images)).item()  # one host sync for the whole split


def bits_per_dim(module, images: torch.Tensor, iwae_k: int, seed: int) -> dict[str, float | str | None]:
    """`{bits_per_dim, bits_per_dim_kind, elbo_bits_per_dim}` of uint8 `images` `[N, C, H, W]`."""
    kind = getattr(module, "likelihood", "none")
    if kind == "none":
        return {"bits_per_dim": None, "bits_per_dim_kind": "n/a", "elbo_bits_per_dim": None}
    if len(images) == 0:
        raise BenchError("likelihood: the reference split is empty; expected held-out images")
    device = module.device
    was_training = module.training
    module.eval()
    try:
        # bounds draw latent noise: a private seeded RNG keeps them reproducible
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            nll = _mean_over_batches(module.nll_bits_per_dim, images, device)
            iwae = None
            if kind == "bound" and hasattr(module, "iwae_bits_per_dim"):
                iwae = _mean_over_batches(lambda x: module.iwae_bits_per_dim(x, iwae_k), images, device)
    finally:
        module.train(was_training)
    if kind == "bound":
        return {"bits_per_dim": iwae if iwae is not None else nll, "bits_per_dim_kind": "bound",
                "elbo_bits_per_dim": nll}
    return {"bits_per_dim": nll, "bits_per_dim_kind": "exact", "elbo_bits_per_dim": None}
