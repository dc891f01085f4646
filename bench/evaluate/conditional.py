"""Metrics of conditional runs (protocol v3): does a sample show the class it was asked for?

A conditional model's scored samples ask for labels spread evenly over the classes
(`bench.models.base.labels_for`: sample i asks for class i mod K), drawn with the run's scoring
seed. On them:

- **accuracy**: the share of samples the reference classifier assigns to the asked class;
- **per-class KID**: KID (features standardized with the reference set's mean and std, as the
  headline KID) of each class's samples against that class's reference images; the record keeps
  the mean over classes and the worst (largest) class. Per-class FID is not computed: on digits a
  class has about 45 test images, so the 64 x 64 covariance of its 64-d features is singular and
  the Fréchet distance is not defined; KID, an unbiased kernel estimate, needs no covariance.

The data floor gets the same numbers from real training images drawn evenly by class
(`class_balanced_draw`), and `guidance_sweep` scores a model with classifier-free guidance at each
weight of `protocol.guidance_sweep` (accuracy, FID, recall per w).
"""

from __future__ import annotations

import torch

from bench.config.protocol import derived_seed
from bench.core.errors import BenchError
from bench.evaluate.metrics import feature_metrics as fm
from bench.evaluate.metrics.prdc import prdc
from bench.evaluate.reference_set import embed
from bench.evaluate.scored_sampling import with_guidance
from bench.models.base import labels_for


def check_classes(ref, n: int, num_classes: int) -> None:
    """Raise one `BenchError` unless `n` samples give every class at least 2 (per-class KID), and every
    class has at least 2 reference images; `num_classes` is the model's, which must be the dataset's."""
    if not ref.extractor.has_classes:  # its logits are over rotations: no accuracy to measure
        raise BenchError(
            f"model.conditional: the dataset has {ref.num_classes} class(es); conditional runs "
            "expect a labelled dataset with at least 2 classes"
        )
    if num_classes != ref.num_classes:
        raise BenchError(
            f"model.conditional: the model conditions on {num_classes} classes, the dataset has "
            f"{ref.num_classes}; expected the same"
        )
    if n < 2 * num_classes:
        raise BenchError(
            f"protocol.n_generated={n}: a conditional run scores samples of every class; expected at "
            f"least 2 per class ({2 * num_classes} for {num_classes} classes)"
        )
    counts = torch.bincount(ref.labels, minlength=num_classes)
    if int(counts.min()) < 2:
        c = int(counts.argmin())
        raise BenchError(
            f"protocol.reference_split={ref.protocol.reference_split!r}: class {c} has "
            f"{int(counts[c])} image(s); per-class KID expects at least 2 per class"
        )


def class_balanced_draw(ref, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` training images drawn without replacement within each class, as many per class as
    `labels_for(n, K)` asks for: uint8 `[n, C, H, W]` and their int64 labels `[n]`."""
    labels = labels_for(n, ref.num_classes)
    images = torch.empty((n, *ref.train.shape[1:]), dtype=ref.train.dtype)
    generator = torch.Generator().manual_seed(seed)
    for c in range(ref.num_classes):
        slots = (labels == c).nonzero().squeeze(1)
        pool = (ref.train_labels == c).nonzero().squeeze(1)
        if len(slots) > len(pool):
            raise BenchError(
                f"protocol.n_generated={n}: the class-balanced data floor draws {len(slots)} training "
                f"images of class {c} without replacement, but the train split holds {len(pool)}"
            )
        images[slots] = ref.train[pool[torch.randperm(len(pool), generator=generator)[: len(slots)]]]
    return images, labels


def class_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of rows of `logits` `[N, K]` whose largest entry is at `labels` `[N]`."""
    return (logits.argmax(1) == labels.to(logits.device)).double().mean().item()


def conditional_scores(
    ref, feats: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, seed: int
) -> tuple[dict[str, float], dict]:
    """Accuracy and per-class KID of samples with features `[N, 64]`, logits `[N, K]` and asked
    labels `[N]`: `({accuracy, class_kid_mean, class_kid_worst}, per-class lists)`. Each class's
    KID subsets are drawn with their own seed derived from `seed`."""
    p = ref.protocol
    labels = labels.cpu()
    check_classes(ref, len(labels), ref.num_classes)
    identity = fm.Precomputed(feats.shape[1])
    real, fake = ref.standardized(ref.features), ref.standardized(feats)
    accuracy, kid_mean, kid_std, n_fake, n_real = [], [], [], [], []
    for c in range(ref.num_classes):
        mine, theirs = labels == c, ref.labels == c
        mean, std = fm.kernel_distance(
            identity, real[theirs], fake[mine], p.kid_subset_size, p.kid_subsets, derived_seed(seed, "class-kid", c)
        )
        accuracy.append(class_accuracy(logits[mine], labels[mine]))
        kid_mean.append(mean)
        kid_std.append(std)
        n_fake.append(int(mine.sum()))
        n_real.append(int(theirs.sum()))
    metrics = {
        "accuracy": class_accuracy(logits, labels),
        "class_kid_mean": sum(kid_mean) / len(kid_mean),
        "class_kid_worst": max(kid_mean),
    }
    per_class = {
        "num_classes": ref.num_classes,
        "labels": "spread evenly: sample i asks for class i mod K",
        "n_generated": n_fake,
        "n_reference": n_real,
        "accuracy": accuracy,
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "kid_subset_size": min(p.kid_subset_size, min(n_fake), min(n_real)),
    }
    return metrics, per_class


def guidance_sweep(module, ref, labels: torch.Tensor, seed: int, scored: torch.Tensor) -> dict | None:
    """Accuracy, FID and recall of `len(labels)` conditional samples at each guidance weight of
    `protocol.guidance_sweep`, or None when the protocol has no sweep.

    Every weight draws with the same seed and labels as the scored samples (`scored`, uint8
    `[N, C, H, W]`), so w = 0 is the scored draw itself and differences between weights come from
    w, not from the draw. Models that are unconditional or have no guidance record why the sweep
    does not apply.
    """
    weights = list(ref.protocol.guidance_sweep)
    if not weights:
        return None
    sweep = {"weights": weights, "applies": True, "reason": None, "points": []}
    name = getattr(module, "family", "") or type(module).__name__
    if not getattr(module, "conditional", False):
        return {**sweep, "applies": False, "reason": "the model is unconditional"}
    if not getattr(module, "supports_guidance", False):
        return {**sweep, "applies": False, "reason": f"the {name} family has no classifier-free guidance"}

    for w in weights:
        if w == 0:
            samples = scored
        else:
            with with_guidance(module, w):
                generator = torch.Generator(module.device).manual_seed(seed)
                samples = module.sample(len(labels), generator=generator, labels=labels)
        feats, logits = embed(ref, samples)
        sweep["points"].append(
            {
                "guidance": w,
                "accuracy": class_accuracy(logits, labels),
                "fid": fm.frechet_distance(fm.Precomputed(feats.shape[1]), ref.features, feats),
                "recall": prdc(ref.features, feats, ref.protocol.pr_k)["recall"],
            }
        )
    return sweep
