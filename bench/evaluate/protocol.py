"""The evaluation protocol's entry points: a trained module, or a set of samples, to numbers.

`evaluate_module` is what training calls; `evaluate_samples` serves `bench-eval` on image
folders and `bench-rescore` on saved samples. Both return plain dicts for the run record
(`bench.record`): `metrics`, `protocol`, `data_floor` (and `timing` for modules).

FID is biased by roughly 1/N: numbers compare only at equal N (`protocol.n_generated`) and
with the same extractor (recorded by id and weights hash). A run's scored samples and KID/IS
subsets are drawn with `scoring_seed(protocol seed, run seed)`, so seeds replicate sampling too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench.errors import BenchError
from bench.evaluate.image_files import GRID_NAME, save_grid, save_samples
from bench.evaluate.likelihood import bits_per_dim
from bench.evaluate.reference import Reference, data_floor, feature_scores, inception_of, memorization_of, reference_for
from bench.evaluate.settings import Protocol, scoring_seed
from bench.evaluate.timing import PeakMemory, flops, timed_sample
from bench.metrics_schema import LIKELIHOOD_NA


def _sample_metrics(ref: Reference, samples: torch.Tensor, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics of uint8 samples `[N, C, H, W]` against `ref` (KID/IS subsets drawn with `seed`),
    and the protocol record for them."""
    _check_samples(samples, ref)
    fid_inception, inception_status = inception_of(ref, samples)
    metrics = {**feature_scores(ref, samples, seed), "memorization": memorization_of(ref, samples),
               "fid_inception": fid_inception}
    p = ref.protocol
    protocol = {**ref.protocol_record(), "n_generated": len(samples), "scoring_seed": seed,
                "kid_subset_size": min(p.kid_subset_size, len(samples), len(ref.images)),
                "inception": inception_status}
    return metrics, protocol


def _check_samples(samples: torch.Tensor, ref: Reference) -> None:
    shape = tuple(ref.images.shape[1:])
    if samples.dtype != torch.uint8 or samples.dim() != 4 or tuple(samples.shape[1:]) != shape:
        raise BenchError(f"samples: expected uint8 images [N, {', '.join(map(str, shape))}], "
                         f"got {samples.dtype} {list(samples.shape)}")
    if len(samples) <= ref.protocol.pr_k:
        raise BenchError(f"samples: expected more than pr_k={ref.protocol.pr_k} images, got {len(samples)}")
    if int(samples.max()) >= ref.levels:
        raise BenchError(f"samples: expected levels 0..{ref.levels - 1}, found {int(samples.max())}")


def evaluate_samples(samples_uint8: torch.Tensor, datamodule, protocol_cfg, seed: int = 0) -> dict[str, Any]:
    """Feature metrics, memorization and (if its weights are on disk) Inception FID of samples.

    Returns `{"metrics", "protocol", "data_floor"}`; likelihood keys are null/"n/a" (samples
    carry no likelihood). The data floor uses the same N as the samples; `seed` is the run seed
    that KID/IS subsets derive from.
    """
    protocol = Protocol.from_config(protocol_cfg)
    ref = reference_for(datamodule, protocol)
    metrics, protocol = _sample_metrics(ref, samples_uint8, scoring_seed(protocol.seed, seed))
    return {"metrics": {**metrics, **LIKELIHOOD_NA}, "protocol": protocol,
            "data_floor": data_floor(ref, len(samples_uint8))}


def evaluate_module(module, datamodule, protocol_cfg, n_generated: int | None, run_dir: Path, seed: int = 0,
                    timing_lock: Path | None = None, defer_timing: bool = False) -> dict[str, Any]:
    """Sample N images from `module` at temperature 1, score them, and measure the module's cost.

    N is `n_generated`, or `protocol.n_generated` when None; `seed` is the run seed, from which the
    scored samples' seed derives (`scoring_seed`). `timing_lock`: a file whose exclusive lock
    the timing pass holds (a sweep's jobs share one); `defer_timing`: leave the speed to the
    sweep's timing pass (`bench.evaluate.timing_pass`). Writes `run_dir/samples.npz` (the scored
    samples) and `run_dir/samples.png` (64 of them). Returns `{"metrics", "protocol",
    "data_floor", "timing"}`.
    """
    protocol = Protocol.from_config(protocol_cfg)
    n_generated = protocol.n_generated if n_generated is None else n_generated
    if not isinstance(n_generated, int) or n_generated < 2:
        raise BenchError(f"protocol.n_generated={n_generated!r}: expected an integer >= 2")
    ref = reference_for(datamodule, protocol)
    floor = data_floor(ref, n_generated)  # fails early, before any sampling, if N is too large
    sample_seed = scoring_seed(protocol.seed, seed)
    with PeakMemory(module.device) as memory:
        samples, speed = timed_sample(module, n_generated, sample_seed, lock_path=timing_lock,
                                       defer=defer_timing)
    run_dir = Path(run_dir)
    save_samples(run_dir, samples, datamodule.spec.levels)
    save_grid(run_dir / GRID_NAME, samples, datamodule.spec.levels)
    metrics, protocol_record = _sample_metrics(ref, samples, sample_seed)
    metrics.update(bits_per_dim(module, ref.images, protocol.iwae_k, sample_seed))
    flops_sample, flops_sample_how = flops(module, "sample")
    flops_train, flops_train_how = flops(module, "train", datamodule.train_images)
    timing = {
        **speed,
        "parameters_sampling": module.num_parameters("sampling"),
        "parameters_training": module.num_parameters("training"),
        "flops_per_sample": flops_sample, "flops_per_sample_source": flops_sample_how,
        "flops_per_train_sample": flops_train, "flops_per_train_sample_source": flops_train_how,
        "peak_memory_mb": memory.mb, "peak_memory_kind": f"{memory.kind} (sampling {n_generated} images)",
    }
    return {"metrics": metrics, "protocol": protocol_record, "data_floor": floor, "timing": timing}
