"""The protocol's settings (`conf/protocol/*.yaml`), validated where they enter."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

from bench.errors import ConfigError

SPLITS = ("train", "val", "test")
#: keys of `conf/protocol` read elsewhere (the training code builds the `QualityCurve` from them)
PASSTHROUGH = ("quality_curve",)


@dataclass(frozen=True)
class Protocol:
    """One named, versioned way of measuring; every key here changes the numbers."""

    version: int = 1
    reference_split: str = "test"
    iwae_k: int = 64
    seed: int = 1234
    kid_subset_size: int = 1000  # capped at the smaller of the two sets
    kid_subsets: int = 100
    is_splits: int = 1
    pr_k: int = 5
    inception_weights: str | None = None  # None: $TORCH_HOME/hub/checkpoints/<weights file>

    def __post_init__(self) -> None:
        if self.reference_split not in SPLITS:
            raise ConfigError("protocol.reference_split", self.reference_split, f"one of {', '.join(SPLITS)}")
        for key in ("iwae_k", "kid_subset_size", "kid_subsets", "is_splits", "pr_k"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"protocol.{key}", value, "a positive integer")
        if self.kid_subset_size < 2:
            raise ConfigError("protocol.kid_subset_size", self.kid_subset_size, "an integer >= 2")

    @classmethod
    def from_config(cls, cfg: DictConfig | Mapping[str, Any] | "Protocol" | None) -> "Protocol":
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
