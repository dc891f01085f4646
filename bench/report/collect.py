"""Find run records under one or several folders and sort them into groups that may be compared.

Numbers measured under different protocols, extractors, datasets (name, shape and split: the
fingerprint), budgets or sample counts do not compare, nor do conditional runs (samples asked for a
class) with unconditional ones, so a group is keyed by all of them and nothing is ever averaged
across groups. A `samples` or `flops` budget stops at the same step on any machine; a `time` budget
buys different training on a GPU, a laptop or a machine shared by two jobs, so its group also names
the device class. Folders from several machines merge by these rules: `apart` says why two groups
were kept apart.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core.records import read_record, record_files

#: Keys without which a record cannot be placed in a report.
REQUIRED_KEYS = ("status", "model", "dataset")


@dataclass(frozen=True)
class Run:
    """One record and the folder it was found in."""

    folder: Path
    record: dict

    @property
    def model(self) -> str:
        return str(self.record.get("model"))

    @property
    def status(self) -> str:
        return str(self.record.get("status"))

    @property
    def seed(self) -> Any:
        return self.record.get("seed")


@dataclass(frozen=True)
class GroupKey:
    """What must be equal for two runs' numbers to be compared."""

    dataset: str
    protocol_version: Any
    extractor_sha256: str | None
    budget_kind: str | None
    budget_value: Any
    n_generated: Any
    conditional: bool = False  # the models condition on class labels (records before protocol v3: false)
    dataset_fingerprint: str | None = None  # the dataset's shape, levels and split (`fingerprint`)
    device_class: str | None = None  # time budgets only (`device_class`): what a second of training buys

    def title(self) -> str:
        sha = (self.extractor_sha256 or "unknown")[:12]
        return (
            f"{self.dataset} · protocol v{self.protocol_version} · extractor {sha} · "
            f"budget {fmt_budget(self.budget_value, self.budget_kind)}"
            + (f" ({self.device_class})" if self.device_class else "")
            + f" · N={self.n_generated}"
            + (" · conditional" if self.conditional else "")
        )


#: The unit of each budget kind's value.
BUDGET_UNITS = {"time": "s", "samples": "images", "flops": "FLOPs"}
#: Budget kinds whose value means the same training on every machine.
MACHINE_INDEPENDENT = ("samples", "flops")


def fmt_budget(value: Any, kind: str | None = None) -> str:
    """`180 s`, `50,000 images`, `5e+12 FLOPs`; the number alone without a kind."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = f"{value:.3g}" if kind == "flops" else f"{value:,.0f}"
    else:
        number = str(value)
    return f"{number} {BUDGET_UNITS.get(kind or '', kind or '')}".rstrip()


#: What each field of a group key is called when two groups differ in it.
_FIELD_NAMES = {
    "dataset": "dataset",
    "dataset_fingerprint": "dataset fingerprint (shape, levels, split)",
    "protocol_version": "protocol version",
    "extractor_sha256": "reference extractor",
    "budget_kind": "budget kind",
    "budget_value": "budget",
    "n_generated": "N (images scored)",
    "conditional": "conditional vs unconditional",
    "device_class": "device class under a time budget",
}


def apart(key: GroupKey, other: GroupKey) -> list[str]:
    """Why runs of `key` are not compared with runs of `other`: one phrase per differing field."""
    reasons = []
    for name, label in _FIELD_NAMES.items():
        mine, theirs = getattr(key, name), getattr(other, name)
        if mine == theirs:
            continue
        if name in ("budget_value", "device_class") and key.budget_kind != other.budget_kind:
            continue  # said by the kind (a device class belongs to time budgets only)
        if name in ("extractor_sha256", "dataset_fingerprint"):
            mine, theirs = (mine or "unknown")[:12], (theirs or "unknown")[:12]
        if name == "conditional":
            reasons.append(label)
            continue
        reasons.append(f"{label} {_shown(mine)} vs {_shown(theirs)}")
    return reasons


def _shown(value: Any) -> str:
    return "none" if value is None else str(value)


@dataclass
class Collection:
    """Everything found under the folders: completed runs by group, other runs, skipped files."""

    root: Path  # the first folder (where the report goes by default)
    groups: dict[GroupKey, list[Run]] = field(default_factory=dict)
    incomplete: list[Run] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def value_at(record: dict, path: Sequence[str]) -> Any:
    """`record[path[0]][path[1]]...`, or None where a level is missing."""
    node: Any = record
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def group_key(record: dict) -> GroupKey:
    """The comparison group of a record (config values stand in where evaluation is absent)."""
    protocol = record.get("protocol") or {}
    budget = record.get("budget") or {}
    return GroupKey(
        dataset=str(record.get("dataset")),
        protocol_version=protocol.get("version", value_at(record, ("config", "protocol", "version"))),
        extractor_sha256=value_at(protocol, ("extractor", "sha256")),
        budget_kind=budget.get("kind"),
        budget_value=budget.get("value"),
        n_generated=protocol.get("n_generated", value_at(record, ("config", "dataset", "n_generated"))),
        conditional=is_conditional(record),
        dataset_fingerprint=fingerprint(record),
        device_class=None if budget.get("kind") in MACHINE_INDEPENDENT else device_class(record),
    )


def fingerprint(record: dict) -> str | None:
    """A hash of the record's `dataset_spec` (name, shape, levels, split sizes and the split's hash):
    the same data on every machine that reads the same files."""
    spec = record.get("dataset_spec")
    if not isinstance(spec, dict):
        return None
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def device_class(record: dict) -> str | None:
    """What a second of training means for this record: the device (with its CPU model where
    recorded), the torch threads, how many jobs shared the machine, and a reduced precision."""
    env = record.get("environment")
    if not isinstance(env, dict):
        return None
    device = str(env.get("device"))
    if env.get("cpu_model") and device.startswith("cpu"):
        device = f"cpu: {env['cpu_model']}"
    precision = env.get("precision")
    return f"{device} · {env.get('threads')} thread(s) · {env.get('concurrent_jobs')} concurrent job(s)" + (
        f" · {precision}" if precision and precision != "32-true" else ""
    )


def is_conditional(record: dict) -> bool:
    """Whether the record's model conditions on labels (its `conditional` field, else its config)."""
    value = record.get("conditional")
    if value is None:
        value = value_at(record, ("config", "model", "conditional"))
    return value is True


def _load(path: Path) -> tuple[dict | None, str | None]:
    """The record at `path`, or None and the reason it was skipped."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = read_record(path)
    if record is None:
        reason = str(caught[0].message) if caught else f"skipping {path}: no record"
        return None, reason
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        return None, f"skipping partial record {path}: missing {', '.join(missing)}"
    return record, None


def collect(roots: Path | Iterable[Path]) -> Collection:
    """Scan `root/**/result.json` of each folder; unreadable or partial records are skipped with a
    warning. A model and seed found twice in one group (overlapping folders, a folder copied to a
    second machine, the same sweep run on two machines under a machine-independent budget) count
    once, the first folder's: the same seed trained again is not a new seed."""
    roots = (Path(roots),) if isinstance(roots, (str, Path)) else tuple(Path(r) for r in roots)
    found = Collection(root=roots[0])
    seen_files: set[Path] = set()
    seen_runs: dict[tuple, Path] = {}
    for path in (p for root in roots for p in record_files(root)):
        if path.resolve() in seen_files:
            continue
        seen_files.add(path.resolve())
        record, reason = _load(path)
        if record is None:
            warnings.warn(reason, stacklevel=2)
            found.skipped.append(reason)
            continue
        run = Run(folder=path.parent, record=record)
        if run.status != "completed":
            found.incomplete.append(run)
            continue
        key = group_key(record)
        identity = (key, run.model, run.seed)
        if identity in seen_runs:
            reason = f"skipping {path}: the same model and seed as {seen_runs[identity] / path.name}"
            warnings.warn(reason, stacklevel=2)
            found.skipped.append(reason)
            continue
        seen_runs[identity] = path.parent
        found.groups.setdefault(key, []).append(run)
    return found
