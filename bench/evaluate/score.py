"""The evaluation protocol's entry points: a trained module, or a set of samples, to numbers.

`evaluate_module` is what training calls; `evaluate_samples` serves `bench-eval` on image
folders and `bench-rescore` on saved samples. Both return plain dicts for the run record
(`bench.core.records`): `metrics`, `protocol`, `data_floor` (and `timing` for modules).

FID is biased by roughly 1/N: numbers compare only at equal N (`protocol.n_generated`) and
with the same extractor (recorded by id and weights hash). A run's scored samples and KID/IS
subsets are drawn with `scoring_seed(protocol seed, run seed)`, so seeds replicate sampling too.
A conditional module's scored samples ask for labels spread evenly over the classes, and its
record gains accuracy, per-class KID, bits/dim given the label, a class-balanced data floor and
the optional guidance sweep (`bench.evaluate.conditional`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from bench.config.protocol import Protocol, scoring_seed
from bench.core.errors import BenchError
from bench.core.schema import CONDITIONAL_NA, LIKELIHOOD_NA
from bench.evaluate.conditional import check_classes, conditional_scores, guidance_sweep
from bench.evaluate.cost.timing import PeakMemory, flops, timed_sample
from bench.evaluate.floor import data_floor
from bench.evaluate.image_files import CLASS_GRID_NAME, GRID_NAME, save_class_grid, save_grid, save_samples
from bench.evaluate.metrics.likelihood import bits_per_dim
from bench.evaluate.reference_set import (
    Reference,
    embed,
    inception_of,
    memorization_of,
    reference_for,
    scores_of_features,
)
from bench.models.base import labels_for


def _sample_metrics(
    ref: Reference, samples: torch.Tensor, seed: int, labels: torch.Tensor | None = None
) -> tuple[dict[str, Any], dict[str, Any], dict | None]:
    """Metrics of uint8 samples `[N, C, H, W]` against `ref` (KID/IS subsets drawn with `seed`),
    the protocol record for them, and (with the int64 `labels` `[N]` that conditional samples
    asked for) the per-class record."""
    _check_samples(samples, ref)
    fid_inception, inception_status = inception_of(ref, samples)
    feats, logits = embed(ref, samples)
    metrics = {
        **scores_of_features(ref, feats, logits, seed),
        "memorization": memorization_of(ref, samples),
        "fid_inception": fid_inception,
        **CONDITIONAL_NA,
    }
    per_class = None
    if labels is not None:
        conditional, per_class = conditional_scores(ref, feats, logits, labels, seed)
        metrics.update(conditional)
    p = ref.protocol
    protocol = {
        **ref.protocol_record(),
        "n_generated": len(samples),
        "scoring_seed": seed,
        "kid_subset_size": min(p.kid_subset_size, len(samples), len(ref.images)),
        "inception": inception_status,
    }
    return metrics, protocol, per_class


def _check_samples(samples: torch.Tensor, ref: Reference) -> None:
    shape = tuple(ref.images.shape[1:])
    if samples.dtype != torch.uint8 or samples.dim() != 4 or tuple(samples.shape[1:]) != shape:
        raise BenchError(
            f"samples: expected uint8 images [N, {', '.join(map(str, shape))}], "
            f"got {samples.dtype} {list(samples.shape)}"
        )
    if len(samples) <= ref.protocol.pr_k:
        raise BenchError(f"samples: expected more than pr_k={ref.protocol.pr_k} images, got {len(samples)}")
    if int(samples.max()) >= ref.levels:
        raise BenchError(f"samples: expected levels 0..{ref.levels - 1}, found {int(samples.max())}")


def evaluate_samples(
    samples_uint8: torch.Tensor, datamodule, protocol_cfg, seed: int = 0, labels: torch.Tensor | None = None
) -> dict[str, Any]:
    """Feature metrics, memorization and (if its weights are on disk) Inception FID of samples.

    Returns `{"metrics", "protocol", "data_floor"}` (+ `"per_class"` with `labels`, the int64
    `[N]` classes conditional samples were asked for); likelihood keys are null/"n/a" (samples
    carry no likelihood). The data floor uses the same N as the samples; `seed` is the run seed
    that KID/IS subsets derive from.
    """
    protocol = Protocol.from_config(protocol_cfg)
    ref = reference_for(datamodule, protocol)
    if labels is not None:
        check_classes(ref, len(samples_uint8), ref.num_classes)
    metrics, protocol, per_class = _sample_metrics(ref, samples_uint8, scoring_seed(protocol.seed, seed), labels)
    result = {
        "metrics": {**metrics, **LIKELIHOOD_NA},
        "protocol": protocol,
        "data_floor": data_floor(ref, len(samples_uint8), by_class=labels is not None),
    }
    if per_class is not None:
        result["per_class"] = per_class
    return result


def evaluate_module(
    module,
    datamodule,
    protocol_cfg,
    n_generated: int | None,
    run_dir: Path,
    seed: int = 0,
    timing_lock: Path | None = None,
    defer_timing: bool = False,
    likelihood_state: dict | None = None,
) -> dict[str, Any]:
    """Sample N images from `module` at temperature 1, score them, and measure the module's cost.

    N is `n_generated`, or `protocol.n_generated` when None; `seed` is the run seed, from which the
    scored samples' seed derives (`scoring_seed`). `timing_lock`: a file whose exclusive lock
    the timing pass holds (a sweep's jobs share one); `defer_timing`: leave the speed to the
    sweep's timing pass (`bench.pipeline.timing_pass`). Writes `run_dir/samples.npz` (the scored
    samples) and `run_dir/samples.png` (64 of them); a conditional module's samples ask for
    `labels_for(N, K)`, and it also writes `run_dir/samples_by_class.png` (one row per class).
    Returns `{"metrics", "protocol", "data_floor", "timing", "conditional"}`, plus `"per_class"`
    for a conditional module and `"guidance_sweep"` when the protocol has one. Bits/dim are
    measured with `likelihood_state` loaded where given (the likelihood table's checkpoint), and
    the module gets its own weights back afterwards.
    """
    protocol = Protocol.from_config(protocol_cfg)
    n_generated = protocol.n_generated if n_generated is None else n_generated
    if not isinstance(n_generated, int) or n_generated < 2:
        raise BenchError(f"protocol.n_generated={n_generated!r}: expected an integer >= 2")
    ref = reference_for(datamodule, protocol)
    conditional = bool(getattr(module, "conditional", False))
    labels = None
    if conditional:
        check_classes(ref, n_generated, module.num_classes)
        labels = labels_for(n_generated, module.num_classes)
    floor = data_floor(ref, n_generated, by_class=conditional)  # fails early, before any sampling, if N is too large
    sample_seed = scoring_seed(protocol.seed, seed)
    with PeakMemory(module.device) as memory:
        samples, speed = timed_sample(
            module, n_generated, sample_seed, lock_path=timing_lock, labels=labels, defer=defer_timing
        )
    run_dir = Path(run_dir)
    levels = datamodule.spec.levels
    save_samples(run_dir, samples, levels, labels=labels)
    save_grid(run_dir / GRID_NAME, samples, levels)
    if conditional:
        save_class_grid(run_dir / CLASS_GRID_NAME, samples, labels, levels, module.num_classes)
    metrics, protocol_record, per_class = _sample_metrics(ref, samples, sample_seed, labels)
    with weights(module, likelihood_state):
        metrics.update(
            bits_per_dim(module, ref.images, protocol.iwae_k, sample_seed, labels=ref.labels if conditional else None)
        )
    flops_sample, flops_sample_how = flops(module, "sample")
    flops_train, flops_train_how = flops(module, "train", datamodule.train_images)
    timing = {
        **speed,
        "parameters_sampling": module.num_parameters("sampling"),
        "parameters_training": module.num_parameters("training"),
        "flops_per_sample": flops_sample,
        "flops_per_sample_source": flops_sample_how,
        "flops_per_train_sample": flops_train,
        "flops_per_train_sample_source": flops_train_how,
        "peak_memory_mb": memory.mb,
        "peak_memory_kind": f"{memory.kind} (sampling {n_generated} images)",
    }
    result = {
        "metrics": metrics,
        "protocol": protocol_record,
        "data_floor": floor,
        "timing": timing,
        "conditional": conditional,
    }
    if per_class is not None:
        result["per_class"] = per_class
    sweep = guidance_sweep(module, ref, labels, sample_seed, samples)
    if sweep is not None:
        result["guidance_sweep"] = sweep
    return result


@contextmanager
def weights(module, state: dict | None) -> Iterator[None]:
    """`module` holding `state` for the block (None: its own weights), then its own weights again."""
    if state is None:
        yield
        return
    own = {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}
    module.load_state_dict(state)
    try:
        yield
    finally:
        module.load_state_dict(own)
