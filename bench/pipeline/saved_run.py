"""A run folder read back as data: its record checked before anything is rebuilt from it.

Run folders travel (a shared results directory, a tarball, a leaderboard entry), so a
`result.json` may come from anyone. Every command that rebuilds a run from its record
(`bench-eval --run`, `bench-time`, `bench-rescore`, the sweep's timing pass) goes through
`read_saved_run`, which refuses, in one line naming the file and the key:

- an interpolation (`${...}`) anywhere in the record's config: a record is never resolved;
- any Hydra node key (`_target_`, `_args_`, ...) under `model` other than `model.net._target_`;
- a `model.net._target_` that is not one of the networks the family declares
  (`GenerativeModule.networks`) or that the caller trusts (the sweep's own job configs);
- a selected checkpoint outside the run folder.

Only `model.net` is ever built, and without recursion. The dataset section is read as keyword
arguments, never instantiated; its `download` and `cache_dir` are ignored (bench's own cache
is used) and `root` is only a default the user's `--root` replaces.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core.errors import BenchError
from bench.core.records import RECORD_NAME, read_record
from bench.data import ImageDataModule
from bench.data.sources import SOURCES
from bench.data.spec import DatasetSpec
from bench.evaluate.reference.extractor import cache_dir
from bench.models.base import GenerativeModule
from bench.models.build import build_model
from bench.models.registry import get_family
from bench.run.checkpoints import load_checkpoint

#: Keys Hydra's `instantiate` acts on: in a record only `model.net._target_` may hold one.
HYDRA_NODE_KEYS = ("_target_", "_args_", "_partial_", "_recursive_", "_convert_")


@dataclass(frozen=True)
class SavedRun:
    """A checked run folder: its record, and the config sections a rebuild may use."""

    folder: Path
    record: dict
    model: dict
    dataset: dict

    @property
    def record_file(self) -> Path:
        return self.folder / RECORD_NAME

    def datamodule(self) -> ImageDataModule:
        return ImageDataModule(**self.dataset)

    def build(self, spec: DatasetSpec) -> GenerativeModule:
        """The run's model, untrained, its network built without recursion."""
        try:
            return build_model(self.model, spec, recursive=False)
        except BenchError as err:
            raise BenchError(f"{self.record_file}: config.{err}") from None

    def module(self, spec: DatasetSpec) -> GenerativeModule:
        """The run's model with the weights of the checkpoint its record selected (for the sample metrics)."""
        path = self.checkpoint_path()
        module = self.build(spec)
        self._load(module, path)
        return module

    def likelihood_state(self, module: GenerativeModule) -> dict | None:
        """The weights the likelihood table scores (protocol v5: `checkpoint.likelihood.selected`),
        checked to fit `module`; None where they are the module's own (one checkpoint, or before v5)."""
        entry = (self.record.get("checkpoint") or {}).get("likelihood")
        if not isinstance(entry, dict) or entry.get("selected") == (self.record.get("checkpoint") or {}).get(
            "selected"
        ):
            return None
        probe = self.build(module.spec)
        self._load(probe, self._inside(entry.get("selected"), "checkpoint.likelihood.selected"))
        return probe.state_dict()

    def _load(self, module: GenerativeModule, path: Path) -> None:
        ckpt = load_checkpoint(path)
        state = ckpt["state_dict"] if "state_dict" in ckpt else ckpt
        meta = ckpt.get("bench")
        family = meta.get("family", module.family) if isinstance(meta, dict) else module.family
        if family != module.family:
            raise BenchError(
                f"{path}: a checkpoint of family {family!r}; expected {module.family!r} as in the run config"
            )
        try:
            module.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as err:
            first = str(err).strip().splitlines()[0]
            raise BenchError(
                f"{path}: weights do not fit model {self.model.get('name', module.family)!r} ({first})"
            ) from None

    def checkpoint_path(self) -> Path:
        checkpoint = self.record.get("checkpoint") or {}
        return self._inside(checkpoint.get("selected") or checkpoint.get("last"), "checkpoint.selected")

    def _inside(self, selected: object, key: str) -> Path:
        """The checkpoint file `selected` names, refused unless it is a file inside the run folder."""
        if not isinstance(selected, str) or not selected:
            raise BenchError(f"{self.record_file}: expected a {key} path; this run kept none")
        path = (self.folder / selected).resolve()
        if not path.is_relative_to(self.folder.resolve()):
            raise BenchError(f"{self.record_file}: {key}={selected!r}: expected a file inside the run folder")
        if not path.is_file():
            raise BenchError(f"{path}: checkpoint not found; expected the file named in {RECORD_NAME}")
        return path


def read_saved_run(
    run_dir: Path, root: str | None = None, trusted_networks: frozenset[str] | set[str] = frozenset()
) -> SavedRun:
    """The run in `run_dir`, checked as described above; one `BenchError` line if it is refused.

    `root` replaces the record's `dataset.root`; `trusted_networks` adds network targets the
    caller composed itself (a sweep's own jobs) to those the family declares.
    """
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    where = run_dir / RECORD_NAME
    if record is None:
        raise BenchError(f"{run_dir}: expected a run folder holding a readable {RECORD_NAME}")
    config = record.get("config")
    for key in ("dataset", "model"):
        if not isinstance(config, dict) or not isinstance(config.get(key), dict):
            raise BenchError(
                f"{where}: expected config.{key} (a mapping) in the record; it is missing or not a mapping"
            )
    for key, value in _nodes(config, "config"):
        if isinstance(value, str) and "${" in value:
            raise BenchError(
                f"{where}: {key}={value!r}: a record is data and is never resolved; expected a plain "
                "value, not an interpolation"
            )
    _check_model(where, config["model"], trusted_networks)
    return SavedRun(run_dir, record, config["model"], _dataset_kwargs(config["dataset"], root))


def _check_model(where: Path, model: dict, trusted_networks: frozenset[str] | set[str]) -> None:
    for key, _ in _nodes(model, "config.model"):
        if key.rsplit(".", 1)[-1] in HYDRA_NODE_KEYS and key != "config.model.net._target_":
            raise BenchError(
                f"{where}: {key}: a record may name a network only as config.model.net._target_; "
                "nothing else in it is built"
            )
    family = model.get("family")
    try:
        cls = get_family(str(family))
    except BenchError as err:
        raise BenchError(f"{where}: config.model.family: {err}") from None
    net = model.get("net")
    if net is None:
        return
    if not isinstance(net, dict):
        raise BenchError(f"{where}: config.model.net: expected a mapping with _target_, found {type(net).__name__}")
    target = net.get("_target_")
    allowed = set(cls.networks) | set(trusted_networks)
    if target not in allowed:
        declared = ", ".join(sorted(cls.networks)) or "none"
        raise BenchError(
            f"{where}: config.model.net._target_={target!r}: not a network the {family!r} family "
            f"declares (declared: {declared}); a record is never allowed to name other code"
        )


def _dataset_kwargs(dataset: dict, root: str | None) -> dict[str, Any]:
    """The data module's keyword arguments: never a download, and bench's own cache, whatever the record says."""
    ignored = ("download", "cache_dir")
    kwargs = {k: v for k, v in dataset.items() if k not in ignored}
    if isinstance(kwargs.get("source_args"), dict):
        kwargs["source_args"] = {k: v for k, v in kwargs["source_args"].items() if k not in ignored}
    accepted = inspect.signature(SOURCES[kwargs["name"]]).parameters if kwargs.get("name") in SOURCES else {}
    if "download" in accepted:
        kwargs["download"] = False
    if "cache_dir" in accepted:
        kwargs["cache_dir"] = str(cache_dir() / "data")
    if root is not None:
        kwargs["root"] = root
    return kwargs


def _nodes(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every entry under `node`, containers and leaves alike."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        path = f"{prefix}.{key}"
        yield path, value
        yield from _nodes(value, path)
