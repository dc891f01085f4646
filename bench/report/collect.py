"""Find run records under a folder and sort them into groups that may be compared.

Numbers measured under different protocols, extractors, budgets or sample counts do not
compare, nor do conditional runs (samples asked for a class) with unconditional ones, so a group
is keyed by all of them and nothing is ever averaged across groups.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
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

    def title(self) -> str:
        sha = (self.extractor_sha256 or "unknown")[:12]
        return (
            f"{self.dataset} · protocol v{self.protocol_version} · extractor {sha} · "
            f"budget {self.budget_kind} {self.budget_value} · N={self.n_generated}"
            + (" · conditional" if self.conditional else "")
        )


@dataclass
class Collection:
    """Everything found under a folder: completed runs by group, other runs, skipped files."""

    root: Path
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


def collect(root: Path) -> Collection:
    """Scan `root/**/result.json`; unreadable or partial records are skipped with a warning."""
    root = Path(root)
    found = Collection(root=root)
    for path in record_files(root):
        record, reason = _load(path)
        if record is None:
            warnings.warn(reason, stacklevel=2)
            found.skipped.append(reason)
            continue
        run = Run(folder=path.parent, record=record)
        if run.status == "completed":
            found.groups.setdefault(group_key(record), []).append(run)
        else:
            found.incomplete.append(run)
    return found
