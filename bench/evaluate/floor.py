"""The data floor: the metrics of real training images scored against the reference, as a generator's are.

It is what a perfect generator would score with N images; the report shows each model's
distance from it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from bench.config.protocol import derived_seed, floor_seed
from bench.core.atomic import write_json_atomic
from bench.core.errors import BenchError
from bench.core.schema import CONDITIONAL_FLOOR_KEYS
from bench.evaluate.conditional import class_balanced_draw, conditional_scores
from bench.evaluate.reference.extractor import cache_dir
from bench.evaluate.reference.inception import default_weights_path
from bench.evaluate.reference_set import FLOOR_BY_CLASS_NOTE, FLOOR_NOTE, Reference, embed, feature_scores, inception_of


def data_floor(ref: Reference, n: int, by_class: bool = False) -> dict:
    """Feature metrics of `protocol.floor_draws` independent draws of `n` real training images.

    Returns the mean of each metric over the draws, the draws themselves (`draws`, for the
    report's confidence interval) and what was measured; cached on disk. With `by_class` (the
    floor of conditional runs) each draw also holds the conditional metrics (accuracy, per-class
    KID) of its own class-balanced draw of `n` training images (`bench.evaluate.conditional`);
    without, those keys are null.
    """
    if by_class:
        class_balanced_draw(ref, n, 0)  # fails early if a class has too few training images
    if n > len(ref.train):
        raise BenchError(
            f"protocol.n_generated={n}: the data floor draws that many training images "
            f"without replacement, but the train split holds {len(ref.train)}; expected "
            f"protocol.n_generated <= {len(ref.train)} (or dataset.protocol_n_generated)"
        )
    weights = ref.protocol.inception_weights or default_weights_path()
    reference = hashlib.sha256(ref.images.contiguous().numpy().tobytes()).hexdigest()
    key = hashlib.sha256(
        json.dumps(
            {
                "dataset": ref.fingerprint,
                "reference": reference,
                "extractor": ref.extractor.sha256,
                "protocol": ref.protocol.to_dict(),
                "n": n,
                "by_class": by_class,
                "inception": [str(weights), Path(weights).is_file()],
            },
            sort_keys=True,
        ).encode()
    )
    path = cache_dir() / "floors" / f"{key.hexdigest()[:20]}.json"
    if path.exists():
        try:
            return json.loads(path.read_text())
        except ValueError:
            pass  # a damaged cache entry is recomputed and replaced
    draws = []
    for draw in range(ref.protocol.floor_draws):
        seed = floor_seed(ref.protocol.seed, draw)
        order = torch.randperm(len(ref.train), generator=torch.Generator().manual_seed(seed))
        images = ref.train[order[:n]]
        fid_inception, status = inception_of(ref, images)
        draw_metrics = {
            **feature_scores(ref, images, seed),
            "fid_inception": fid_inception,
            **dict.fromkeys(CONDITIONAL_FLOOR_KEYS),
        }
        if by_class:
            class_seed = derived_seed(ref.protocol.seed, "floor-by-class", draw)
            images, labels = class_balanced_draw(ref, n, class_seed)
            draw_metrics.update(conditional_scores(ref, *embed(ref, images), labels, class_seed)[0])
        draws.append(draw_metrics)
    means = {
        k: (sum(d[k] for d in draws) / len(draws) if all(d[k] is not None for d in draws) else None) for k in draws[0]
    }
    floor = {
        **means,
        "draws": draws,
        "n_draws": len(draws),
        "inception": status,
        "n_generated": n,
        "source": "train",
        "note": FLOOR_NOTE + (FLOOR_BY_CLASS_NOTE if by_class else ""),
    }
    write_json_atomic(path, floor)
    return floor
