"""Memory of the VAE decoder's output at 32x32x3 with 256 levels (the CIFAR-10 preset's VAE).

The decoder is a categorical over the levels for every sub-pixel: `C*H*W*levels` float32 logits
per image. The figure is computed from the network (`logits_per_image`) and checked against one
decoded batch's actual tensor; then scaled to what the preset holds at once: a training batch
(logits and their gradient), the IWAE bound with the protocol's k (undivided vs the chunk bound
`LOGITS_PER_CHUNK`) and a sampling batch. Nothing here is timed.

Prints the figures and writes them to benchmarks/results/vae_decoder_memory.json.

    python benchmarks/vae_decoder_memory.py
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import torch
from preset_models import preset_model_config

from bench.data.spec import DatasetSpec
from bench.models import cnn_decoder
from bench.models.build import build_model

RESULTS = Path(__file__).resolve().parent / "results"
CIFAR_SHAPE = DatasetSpec(
    "cifar10-shaped",
    channels=3,
    height=32,
    width=32,
    levels=256,
    split_seed=0,
    train_size=45_000,
    val_size=5_000,
    test_size=10_000,
)
IWAE_K, EVAL_BATCH = 64, 256  # protocol.iwae_k and bench.evaluate.metrics.likelihood's batch


def mib(n_bytes: float) -> float:
    return n_bytes / 2**20


def main() -> None:
    torch.set_num_threads(1)
    cfg = preset_model_config("cnn_decoder_cifar10")
    model = build_model(cfg, CIFAR_SHAPE).eval()
    per_image = model.net.logits_per_image(CIFAR_SHAPE) * 4  # float32
    with torch.no_grad():
        logits = model.net.decode(torch.zeros(2, model.net.latent_dim))
    measured = logits.numel() * logits.element_size() / 2
    assert measured == per_image, f"computed {per_image} B per image, a decoded batch holds {measured}"
    batch, samples = int(cfg.batch_size), int(cfg.module.get("sample_batch_size", 1000))
    logits_per_image = model.net.logits_per_image(CIFAR_SHAPE)
    # how many importance samples / images the model decodes at once (as in bench.models.cnn_decoder)
    iwae_per_chunk = min(IWAE_K, max(1, cnn_decoder.LOGITS_PER_CHUNK // (EVAL_BATCH * logits_per_image)))
    images_per_chunk = min(samples, max(1, cnn_decoder.LOGITS_PER_CHUNK // logits_per_image))
    figures = {
        "per_image_mib": mib(per_image),
        "training_batch_mib": mib(2 * batch * per_image),  # logits + their gradient
        "iwae_undivided_mib": mib(IWAE_K * EVAL_BATCH * per_image),
        "iwae_chunked_mib": mib(iwae_per_chunk * EVAL_BATCH * per_image),
        "sampling_batch_undivided_mib": mib(2 * samples * per_image),  # logits + probabilities
        "sampling_chunked_mib": mib(2 * images_per_chunk * per_image),
    }
    print(
        f"VAE decoder output at 32x32x3, 256 levels: {CIFAR_SHAPE.dims:,} sub-pixels x 256 levels x 4 B "
        f"= {figures['per_image_mib']:.2f} MiB per image (checked on a decoded batch)"
    )
    print(f"  training batch of {batch} (logits + gradient):      {figures['training_batch_mib']:9.0f} MiB")
    print(f"  IWAE k={IWAE_K} x {EVAL_BATCH} images, undivided:          {figures['iwae_undivided_mib']:9.0f} MiB")
    print(
        f"  IWAE as decoded ({iwae_per_chunk} sample(s) x {EVAL_BATCH} a chunk):       {figures['iwae_chunked_mib']:9.0f} MiB"
    )
    print(
        f"  sampling {samples} images at once (logits + probs):    {figures['sampling_batch_undivided_mib']:9.0f} MiB"
    )
    print(
        f"  sampling as decoded ({images_per_chunk} images a chunk):         {figures['sampling_chunked_mib']:9.0f} MiB"
    )
    result = {
        "benchmark": "vae_decoder_memory",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": "cnn_decoder_cifar10",
        "shape": list(CIFAR_SHAPE.shape),
        "levels": CIFAR_SHAPE.levels,
        "dtype": "float32",
        **{k: round(v, 2) for k, v in figures.items()},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "vae_decoder_memory.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
