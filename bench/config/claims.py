"""Claims a comparison states about its families, and how the report and `bench-compare` decide them.

A claim reads `"<a> < <b> on <metric>"`: side `a` is better than side `b` on a metric of
`bench.core.schema.METRICS` that has a direction, so `"gpt < cnn_decoder on fid"` says GPT's FID
is lower and `"gan < gpt on inception_score"` says the GAN's IS is higher ("<" means ranks ahead;
`>` states the reverse). A side names a family (`model.family`: `gpt_mnist` counts as `gpt`) or,
failing that, a model. The settings live at the top level of the run config (`claims`,
`claim_margin`, `decide`, `max_seeds`), none of them changes a run's hash, and `bench-compare`
writes them to `<sweep>/claims.json`, which `bench-report` reads for that folder.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bench.core.atomic import write_json_atomic
from bench.core.errors import BenchError, ConfigError
from bench.core.schema import METRIC_BY_KEY

CLAIMS_FILE = "claims.json"
_KEYS = ("claims", "claim_margin", "decide", "max_seeds")
#: seeds per model of `experiment=compare` before `decide=true` adds any
DEFAULT_FIRST = 3
_CLAIM = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*([<>])\s*([A-Za-z0-9_.-]+)\s+on\s+([A-Za-z0-9_]+)\s*$")
_FORM = "a claim 'a < b on metric' (a ranks ahead of b: lower FID, higher IS), e.g. 'gpt < cnn_decoder on fid'"


@dataclass(frozen=True)
class Claim:
    """`better` is claimed better than `worse` on `metric`."""

    better: str
    worse: str
    metric: str

    @property
    def text(self) -> str:
        return f"{self.better} < {self.worse} on {self.metric}"

    @property
    def expected_sign(self) -> int:
        """The sign of mean(better) - mean(worse) when the claim holds (-1: lower is better)."""
        return -1 if METRIC_BY_KEY[self.metric].better == "lower" else 1


def parse_claim(text: Any, key: str = "claims") -> Claim:
    """A claim from its text; one `ConfigError` naming `key` for anything else."""
    match = _CLAIM.match(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(key, text, _FORM)
    a, op, b, metric = match.groups()
    spec = METRIC_BY_KEY.get(metric)
    if spec is None or spec.better not in ("lower", "higher"):
        ranked = ", ".join(m for m, s in METRIC_BY_KEY.items() if s.better in ("lower", "higher"))
        raise ConfigError(key, text, f"a metric with a direction after 'on': one of {ranked}")
    if a == b:
        raise ConfigError(key, text, "two different families or models on either side")
    return Claim(a, b, metric) if op == "<" else Claim(b, a, metric)


@dataclass(frozen=True)
class ClaimSettings:
    """What a comparison claims and how it is decided (see the module docstring)."""

    claims: tuple[Claim, ...] = ()
    margins: Mapping[str, float] = field(default_factory=dict)  # metric -> equivalence margin
    decide: bool = False
    max_seeds: int = 10
    first: int = DEFAULT_FIRST  # seeds per model before `decide` adds any: the first look

    def to_dict(self) -> dict:
        return {
            "claims": [c.text for c in self.claims],
            "claim_margin": dict(self.margins),
            "decide": self.decide,
            "max_seeds": self.max_seeds,
            "first": self.first,
        }


def _margins(node: Any, key: str) -> dict[str, float]:
    if node is None:
        return {}
    if not isinstance(node, Mapping):
        raise ConfigError(key, node, "a mapping of metric to margin, e.g. {fid: 10, bits_per_dim: 0.05}")
    margins = {}
    for metric, value in node.items():
        if metric not in METRIC_BY_KEY:
            raise ConfigError(f"{key}.{metric}", value, "a metric of the report (e.g. fid, bits_per_dim)")
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number) or number <= 0:
            raise ConfigError(f"{key}.{metric}", value, "a positive number in the metric's units")
        margins[str(metric)] = float(number)
    return margins


def _count(node: Any, key: str, minimum: int) -> int:
    if not isinstance(node, int) or isinstance(node, bool) or node < minimum:
        raise ConfigError(key, node, f"an integer >= {minimum}")
    return node


def settings_from(node: Mapping[str, Any], first: int = DEFAULT_FIRST, where: str = "") -> ClaimSettings:
    """Validated settings from a config or a `claims.json` (keys `claims`, `claim_margin`, `decide`,
    `max_seeds`, optional `first`); `where` prefixes the key names in messages (a file's path)."""
    claims_node = node.get("claims") or []
    if isinstance(claims_node, str) or not isinstance(claims_node, Sequence):
        raise ConfigError(f"{where}claims", claims_node, f"a list of claims, each {_FORM}")
    claims = tuple(parse_claim(text, f"{where}claims") for text in claims_node)
    decide = node.get("decide", False)
    if not isinstance(decide, bool):
        raise ConfigError(f"{where}decide", decide, "true or false")
    # the first look needs two seeds a side; a one-seed preset's first look is at its second seed
    first = max(_count(node.get("first", first), f"{where}first", 1), 2)
    max_seeds = _count(node.get("max_seeds", 10), f"{where}max_seeds", first if decide else 1)
    max_seeds = max(max_seeds, first)  # without decide no seed is added: the looks end where they start
    return ClaimSettings(
        claims=tuple(dict.fromkeys(claims)),
        margins=_margins(node.get("claim_margin"), f"{where}claim_margin"),
        decide=decide,
        max_seeds=max_seeds,
        first=first,
    )


def settings_of_config(cfg: DictConfig, first: int = DEFAULT_FIRST) -> ClaimSettings:
    """The settings of a composed run config (its top-level `claims`, `claim_margin`, `decide`, `max_seeds`)."""
    node = {
        k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
        for k in _KEYS
        if k in cfg
    }
    return settings_from(node, first)


def write_settings(folder: Path, settings: ClaimSettings) -> Path:
    """`folder/claims.json`, the settings `bench-report` uses for that folder."""
    path = Path(folder) / CLAIMS_FILE
    write_json_atomic(path, settings.to_dict())
    return path


def read_settings(folder: Path) -> ClaimSettings | None:
    """The settings in `folder/claims.json` (a file a user may have received: plain JSON, validated),
    or None when there is none."""
    path = Path(folder) / CLAIMS_FILE
    if not path.is_file():
        return None
    try:
        node = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise BenchError(f"{path}: not readable as JSON ({err}); expected the claims bench-compare writes") from err
    if not isinstance(node, dict):
        raise BenchError(f"{path}: expected a JSON object with 'claims', 'claim_margin', 'decide', 'max_seeds'")
    return settings_from(node, where=f"{path}: ")
