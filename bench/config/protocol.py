"""The protocol's settings (`bench/conf/protocol/*.yaml`), validated where they enter, and its seeds.

Version 6 (this one) gives each FID its within-run sampling standard deviation
(`fid_sampling_std`): a grouped delete-one-group jackknife over both the generated and the
reference images (`fid_jackknife_groups` groups per side, `bench.evaluate.metrics.fid_jackknife`).
The data floor's interval uses its draws' sds, so it covers a new draw of the reference set too,
not only new draws of training images.
Version 5 scores every trained run by one rule per table: the sample-quality metrics at
the checkpoint with the best validation sample quality (`selection_statistic` of `selection_n`
generated images against the validation split, measured at every validation), bits/dim at the
checkpoint with the best validation bits/dim. Version 4 scored likelihood families at their best
validation bits/dim and the others at their final weights.
Version 4 timed a few sampling batches after the scored draw. Version 3 adds the metrics of conditional runs: scored samples of a conditional model
ask for labels spread evenly over the classes (`bench.models.base.labels_for`), and such runs
record the reference classifier's accuracy on them, per-class KID, bits/dim given the label, the
same for a class-balanced data floor, and the optional guidance sweep (`guidance_sweep`).
Version 2: the scored samples and the KID/IS subsets are drawn with a seed derived from
(protocol seed, run seed), so n run seeds replicate the whole pipeline, sampling included; the
data floor is the mean of `floor_draws` independent draws of N training images. Version 1 drew
every run's samples with the protocol seed itself and the floor once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bench.core.errors import ConfigError

SPLITS = ("train", "val", "test")
#: statistics that can select the sample-quality table's checkpoint (lower is better for both)
SELECTION_STATISTICS = ("fid", "kid")
#: keys of `bench/conf/protocol` read elsewhere (the training code builds the `QualityCurve` from them)
PASSTHROUGH = ("quality_curve",)


@dataclass(frozen=True)
class Protocol:
    """One named, versioned way of measuring; every key here changes the numbers."""

    version: int = 6
    reference_split: str = "test"
    iwae_k: int = 64
    seed: int = 1234
    kid_subset_size: int = 1000  # capped at the smaller of the two sets
    kid_subsets: int = 100
    is_splits: int = 1
    pr_k: int = 5
    n_generated: int = 1000  # generated images scored per run, and real ones per floor draw
    floor_draws: int = 5  # independent draws of N training images behind the data floor's mean and CI
    inception_weights: str | None = None  # None: $TORCH_HOME/hub/checkpoints/<weights file>
    #: classifier-free guidance weights w at which conditional models with guidance are also
    #: scored (accuracy, FID, recall per w); a tuple, so the protocol stays hashable
    guidance_sweep: tuple[float, ...] = ()
    #: what picks the checkpoint the sample-quality table scores: this statistic of
    #: `selection_n` generated images against the validation split, at every validation
    selection_statistic: str = "fid"
    selection_n: int = 500
    #: groups per side of the jackknife behind each FID's sampling sd (at most `n_generated`; a
    #: smaller set at run time, a reference split or a capped N, is split one image per group)
    fid_jackknife_groups: int = 50

    def __post_init__(self) -> None:
        object.__setattr__(self, "guidance_sweep", _guidance_weights(self.guidance_sweep))
        if self.selection_statistic not in SELECTION_STATISTICS:
            raise ConfigError(
                "protocol.selection_statistic", self.selection_statistic, f"one of {', '.join(SELECTION_STATISTICS)}"
            )
        if self.reference_split not in SPLITS:
            raise ConfigError("protocol.reference_split", self.reference_split, f"one of {', '.join(SPLITS)}")
        for key in (
            "version",
            "iwae_k",
            "kid_subset_size",
            "kid_subsets",
            "is_splits",
            "pr_k",
            "n_generated",
            "floor_draws",
            "seed",
            "selection_n",
            "fid_jackknife_groups",
        ):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "seed" else 1):
                raise ConfigError(
                    f"protocol.{key}", value, "a non-negative integer" if key == "seed" else "a positive integer"
                )
        for key in ("kid_subset_size", "n_generated", "floor_draws", "selection_n", "fid_jackknife_groups"):
            if getattr(self, key) < 2:
                raise ConfigError(f"protocol.{key}", getattr(self, key), "an integer >= 2")
        if self.n_generated <= self.pr_k:
            raise ConfigError("protocol.n_generated", self.n_generated, f"more than pr_k={self.pr_k} images")
        if self.fid_jackknife_groups > self.n_generated:
            raise ConfigError(
                "protocol.fid_jackknife_groups",
                self.fid_jackknife_groups,
                f"at most n_generated={self.n_generated} (each group holds at least one image)",
            )

    @classmethod
    def from_config(cls, cfg: DictConfig | Mapping[str, Any] | Protocol | None) -> Protocol:
        if isinstance(cfg, Protocol):
            return cfg
        if cfg is None:
            return cls()
        data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k not in PASSTHROUGH}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"protocol.{unknown[0]}", data[unknown[0]], f"one of the keys {', '.join(sorted(known))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def selection_monitor(self) -> str:
        """The logged name of the sample-quality selection statistic, e.g. `val/fid`."""
        return f"val/{self.selection_statistic}"

    @property
    def selection_rule(self) -> str:
        """The sample-quality table's rule in words (the record and the report state it)."""
        return f"best {self.selection_monitor} ({self.selection_n} samples vs the validation split)"


def _guidance_weights(value: Any) -> tuple[float, ...]:
    """`protocol.guidance_sweep` as a tuple of floats, or one `ConfigError` naming the key."""
    expected = "a list of guidance weights w >= 0, e.g. [0, 0.5, 1, 2] (or [] for no sweep)"
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
        raise ConfigError("protocol.guidance_sweep", value, expected)
    for w in value:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ConfigError("protocol.guidance_sweep", list(value), expected)
    if len(set(value)) != len(value):
        raise ConfigError("protocol.guidance_sweep", list(value), "distinct guidance weights")
    return tuple(float(w) for w in value)


def derived_seed(protocol_seed: int, purpose: str, index: int) -> int:
    """A 63-bit seed for one `purpose` and `index`, from the protocol seed (SHA-256 of all three).

    Distinct purposes and indices give unrelated streams, unlike `seed + i`, whose neighbours
    collide across purposes.
    """
    digest = hashlib.sha256(f"{protocol_seed}:{purpose}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def scoring_seed(protocol_seed: int, run_seed: int) -> int:
    """The seed of a run's scored samples and its KID/IS subsets: one stream per (protocol, run) seed."""
    return derived_seed(protocol_seed, "samples", run_seed)


def floor_seed(protocol_seed: int, draw: int) -> int:
    """The seed of the data floor's `draw`-th draw of training images (and its KID/IS subsets)."""
    return derived_seed(protocol_seed, "floor", draw)
