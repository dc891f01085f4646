"""Bits per dimension on a held-out split, through the module's own likelihood.

Kinds: "exact" (autoregressive), "bound" (VAE: the headline is the IWAE bound with the
protocol's k when the module offers `iwae_bits_per_dim(x, k)`, the ELBO is reported beside it),
"n/a" for models without a likelihood. On a conditional model `bits_per_dim` is the marginal
(-log2 of sum_y p(y) p(x | y) under a uniform class prior, what an unconditional model is scored
on) and `bits_per_dim_given_label` the conditional one, -log2 p(x | y) with the images' true labels.
"""

from __future__ import annotations

import inspect

import torch

from bench.core.errors import BenchError

_BATCH = 256


@torch.no_grad()
def _mean_over_batches(fn, images: torch.Tensor, device: torch.device, labels: torch.Tensor | None = None) -> float:
    total = torch.zeros((), dtype=torch.float64, device=device)
    for start in range(0, len(images), _BATCH):
        x = images[start : start + _BATCH].to(device)
        values = fn(x) if labels is None else fn(x, labels[start : start + _BATCH].to(device))
        total += values.double().sum()
    return (total / len(images)).item()  # one host sync for the whole split


def _takes_labels(fn) -> bool:
    try:
        return "labels" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def bits_per_dim(
    module, images: torch.Tensor, iwae_k: int, seed: int, labels: torch.Tensor | None = None
) -> dict[str, float | str | None]:
    """`{bits_per_dim, bits_per_dim_kind, elbo_bits_per_dim}` of uint8 `images` `[N, C, H, W]`.

    With `labels` (int64 `[N]`, the images' classes; conditional models only) also
    `{bits_per_dim_given_label, elbo_bits_per_dim_given_label}`: the VAE's headline given the
    label is its IWAE bound when `iwae_bits_per_dim(x, k, labels)` takes labels, else its ELBO.
    """
    kind = getattr(module, "likelihood", "none")
    given = labels is not None
    if kind == "none":
        return {
            "bits_per_dim": None,
            "bits_per_dim_kind": "n/a",
            "elbo_bits_per_dim": None,
            **({"bits_per_dim_given_label": None, "elbo_bits_per_dim_given_label": None} if given else {}),
        }
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
        result = _headline(kind, nll, iwae)
        if given:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seed)
                nll = _mean_over_batches(module.nll_bits_per_dim, images, device, labels)
                iwae = None
                if kind == "bound" and _takes_labels(getattr(module, "iwae_bits_per_dim", None)):
                    iwae = _mean_over_batches(
                        lambda x, y: module.iwae_bits_per_dim(x, iwae_k, labels=y), images, device, labels
                    )
            given_label = _headline(kind, nll, iwae)
            result.update(
                bits_per_dim_given_label=given_label["bits_per_dim"],
                elbo_bits_per_dim_given_label=given_label["elbo_bits_per_dim"],
            )
    finally:
        module.train(was_training)
    return result


def _headline(kind: str, nll: float, iwae: float | None) -> dict[str, float | str | None]:
    if kind == "bound":
        return {
            "bits_per_dim": iwae if iwae is not None else nll,
            "bits_per_dim_kind": "bound",
            "elbo_bits_per_dim": nll,
        }
    return {"bits_per_dim": nll, "bits_per_dim_kind": "exact", "elbo_bits_per_dim": None}
