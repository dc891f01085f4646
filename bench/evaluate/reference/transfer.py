"""Carry a cached reference classifier to another machine, so both score with the same one.

Datasets without shipped weights train their reference classifier on first use
(`bench.evaluate.reference.extractor`), so two machines train two networks and their FIDs never
compare. `export_reference` writes the network cached for a dataset config and protocol version
as one file; `import_reference` checks that file against this machine's dataset config and
installs it where `load_extractor` looks, so runs here record the same `protocol.extractor` id and
sha256 as runs there (reports group runs by that sha256).

The file is a `torch.save` of a plain dict, read back with `weights_only=True`: the cache file's
bytes as a uint8 tensor (so the installed file hashes to exactly the recorded sha256), the cache
key and the fields it hashes, and the sidecar (test accuracy, ...). An import refuses, in one line
and before it writes anything: a file that is not such an export; one for another dataset config
or protocol version (naming the field); weights whose hash is not the recorded one; weights whose
test accuracy, measured again on this machine's test split, is not the recorded one; and, without
`force`, a different network already cached under the same key.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.core.atomic import write_bytes_atomic
from bench.core.errors import BenchError
from bench.evaluate.reference import sidecar
from bench.evaluate.reference.classifier import ARCHITECTURE, ReferenceCNN
from bench.evaluate.reference.extractor import (
    CLASSIFIER_SEED,
    SHIPPED,
    CacheEntry,
    cache_entry,
    file_sha256,
    load_extractor,
    num_outputs,
)
from bench.evaluate.reference.rotation_task import ROTATIONS
from bench.run.checkpoints import save_atomic

FORMAT = "bench-reference-classifier"
FORMAT_VERSION = 1
#: Accuracy counts correct test images out of n (out of 4n for the rotation task), so the same
#: weights on the same images give the same value, and different predictions differ by at least
#: one image. Both machines measure on the CPU (`sidecar.measure`), so any difference means other
#: weights or other test images; half an image (plus 1e-9 for float rounding) allows no image to
#: flip, only the rounding of the fraction. A network measured elsewhere on another device, whose
#: borderline image flips here, is refused rather than recorded with an accuracy it does not have.
ACCURACY_TOLERANCE_IMAGES = 0.5
#: The key's fields as a refusal names them.
FIELD_NAMES = {
    "dataset": "dataset fingerprint",
    "architecture": "architecture",
    "seed": "seed",
    "protocol_version": "protocol version",
    "task": "task",
}
_EXPECTED = "expected a reference classifier written by `bench-reference export`"


def export_reference(datamodule, protocol_version: int, path: Path) -> dict:
    """Write `datamodule`'s cached reference classifier (trained now if not cached) to `path`.

    Returns what was written: file, extractor id, sha256, cache file and the recorded accuracy.
    """
    path = Path(path)
    _refuse_shipped(datamodule.spec.name, "export")
    entry = cache_entry(datamodule, protocol_version)
    extractor = load_extractor(datamodule, protocol_version)  # trains and caches it on first use
    raw = entry.path.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    if sha != extractor.sha256:
        raise BenchError(f"{entry.path}: the cached weights changed while they were exported; export again")
    meta = {k: v for k, v in extractor.info.items() if k not in ("source", "path")}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dataset_name": datamodule.spec.name,
        "extractor_id": extractor.id,
        "cache_file": entry.path.name,
        "key": entry.key,
        "key_fields": dict(entry.fields),
        "task": extractor.task,
        "weights_sha256": sha,
        "weights_file": torch.frombuffer(bytearray(raw), dtype=torch.uint8),
        "sidecar": meta,
        "torch_version": str(torch.__version__),  # a str subclass weights_only would refuse
    }
    save_atomic(payload, path)
    return {
        "file": str(path),
        "extractor_id": extractor.id,
        "sha256": sha,
        "cache_file": str(entry.path),
        "test_accuracy": meta["test_accuracy"],
        "n_test_images": meta["n_test_images"],
    }


@dataclass
class CheckedImport:
    """An export that passed every check against this machine's dataset config, ready to install."""

    source: Path
    entry: CacheEntry
    raw: bytes
    sidecar: dict
    #: what was checked, for the command line
    report: dict


def import_reference(path: Path, datamodule, protocol_version: int, force: bool = False) -> dict:
    """Check the export at `path` against `datamodule` and install it in this machine's cache;
    returns what was checked and where it went (see `check_import` and `install`)."""
    return install(check_import(path, datamodule, protocol_version), force=force)


def check_import(path: Path, datamodule, protocol_version: int) -> CheckedImport:
    """Read the export at `path` and check it is `datamodule`'s classifier for `protocol_version`:
    same dataset fingerprint and cache key as here, weights hashing to the recorded sha256, and the
    recorded test accuracy measured again on this machine's test split. Writes nothing."""
    path = Path(path)
    spec = datamodule.spec
    _refuse_shipped(spec.name, "import")
    payload = _read_export(path)
    entry = cache_entry(datamodule, protocol_version)
    _check_same_key(path, payload, entry, spec.name)
    raw = payload["weights_file"].numpy().tobytes()
    sha = hashlib.sha256(raw).hexdigest()
    recorded_meta = payload["sidecar"]
    if sha != payload["weights_sha256"] or sha != recorded_meta["weights_sha256"]:
        raise BenchError(
            f"{path}: weights sha256 mismatch: the weights hash to {sha[:12]}, the file records "
            f"{payload['weights_sha256'][:12]} (sidecar {recorded_meta['weights_sha256'][:12]}); "
            "the file was changed after export: export it again"
        )
    net = _net_from_bytes(path, raw, spec, entry.rotation)
    n_test = len(datamodule.test_images)
    if recorded_meta["n_test_images"] != n_test:
        raise BenchError(
            f"{path}: n_test_images mismatch: the file's accuracy is over {recorded_meta['n_test_images']} "
            f"test images, this dataset config has {n_test}"
        )
    measured = sidecar.measure(net, datamodule, entry.rotation, CLASSIFIER_SEED, sha, "on import")["test_accuracy"]
    recorded = float(recorded_meta["test_accuracy"])
    counted = n_test * (ROTATIONS if entry.rotation else 1)
    tolerance = ACCURACY_TOLERANCE_IMAGES / counted + 1e-9
    if abs(measured - recorded) > tolerance:
        raise BenchError(
            f"{path}: test accuracy mismatch: recorded {recorded:.6f}, measured here {measured:.6f} on "
            f"{n_test} test images (tolerance {tolerance:.2g}: less than one image); these are not the "
            "weights the file describes, or this machine's test split differs"
        )
    installed_meta = {
        **recorded_meta,
        "written": f"imported from {path.name} (on the exporting machine: {recorded_meta.get('written')}); "
        f"test accuracy measured again here: {measured}",
    }
    report = {
        "file": str(path),
        "dataset": spec.name,
        "extractor_id": entry.extractor_id,
        "dataset_fingerprint": entry.fields["dataset"],
        "protocol_version": protocol_version,
        "key": entry.key,
        "sha256": sha,
        "test_accuracy_recorded": recorded,
        "test_accuracy_measured": measured,
        "n_test_images": n_test,
        "tolerance": tolerance,
        "cache_file": str(entry.path),
    }
    return CheckedImport(path, entry, raw, installed_meta, report)


def install(checked: CheckedImport, force: bool = False) -> dict:
    """Write a checked export's weights and sidecar where `load_extractor` looks (atomically).

    An identical cached file is kept as it is; a different one is replaced only with `force`.
    Returns the check's report with `installed` saying which happened.
    """
    target, sha = checked.entry.path, checked.report["sha256"]
    installed = "written"
    if target.exists():
        existing = file_sha256(target)
        if existing == sha:
            return {**checked.report, "installed": "already cached (identical weights); nothing written"}
        if not force:
            raise BenchError(
                f"{target}: another reference classifier is cached under this key (sha256 {existing[:12]}, "
                f"the import's is {sha[:12]}); pass --force to replace it (runs scored with it will not "
                "compare with runs scored after)"
            )
        installed = f"replaced sha256 {existing[:12]} (--force)"
    write_bytes_atomic(target, checked.raw)
    sidecar.write_sidecar(target, checked.sidecar)
    return {**checked.report, "installed": installed}


def _refuse_shipped(name: str, verb: str) -> None:
    if name in SHIPPED:
        raise BenchError(
            f"dataset {name!r}: its reference classifier ships with bench ({SHIPPED[name].name}), so every "
            f"machine already scores with the same one; nothing to {verb}"
        )


#: The export's top-level keys and their types (after `torch.load(weights_only=True)`).
_SCHEMA = {
    "format_version": int,
    "dataset_name": str,
    "extractor_id": str,
    "cache_file": str,
    "key": str,
    "key_fields": dict,
    "task": str,
    "weights_sha256": str,
    "weights_file": torch.Tensor,
    "sidecar": dict,
}
_SIDECAR_SCHEMA = {"test_accuracy": (float, int), "n_test_images": int, "weights_sha256": str}


def _read_export(path: Path) -> dict:
    """The export at `path` as a dict whose keys and types are checked; one line if it is not one."""
    if not path.is_file():
        raise BenchError(f"{path}: no such file; {_EXPECTED}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file, truncated, or holding objects weights_only refuses
        raise BenchError(
            f"{path}: not a reference classifier export ({type(err).__name__} when read with "
            f"torch.load(weights_only=True)); {_EXPECTED}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = f"format {payload.get('format')!r}" if isinstance(payload, dict) else type(payload).__name__
        raise BenchError(f"{path}: not a reference classifier export (it holds {found}); {_EXPECTED}")
    if payload.get("format_version") != FORMAT_VERSION:
        raise BenchError(
            f"{path}: format version {payload.get('format_version')!r}, expected {FORMAT_VERSION}; "
            "export it again with this version of bench"
        )
    for key, kind in _SCHEMA.items():
        if not isinstance(payload.get(key), kind):
            raise BenchError(f"{path}: {key} is missing or not a {kind.__name__}; {_EXPECTED}")
    weights = payload["weights_file"]
    if weights.dtype != torch.uint8 or weights.dim() != 1:
        raise BenchError(f"{path}: weights_file is {weights.dtype} {list(weights.shape)}, expected 1-D uint8 bytes")
    for key, kinds in _SIDECAR_SCHEMA.items():
        if not isinstance(payload["sidecar"].get(key), kinds) or isinstance(payload["sidecar"].get(key), bool):
            raise BenchError(f"{path}: sidecar.{key} is missing or of the wrong type; {_EXPECTED}")
    return payload


def _check_same_key(path: Path, payload: dict, entry: CacheEntry, name: str) -> None:
    """Refuse an export made for another dataset config or protocol version, naming the field."""

    def refuse(field: str, theirs, ours) -> None:
        raise BenchError(
            f"{path}: {field} mismatch: the file has {theirs!r}, this machine's dataset config gives "
            f"{ours!r}; export from, or compose here, the same dataset config and protocol version"
        )

    if payload["dataset_name"] != name:
        refuse("dataset name", payload["dataset_name"], name)
    theirs_fields = payload["key_fields"]
    extra = sorted(set(theirs_fields) - set(FIELD_NAMES), key=str)  # fields this version of bench does not know
    for field in [*FIELD_NAMES, *extra]:
        theirs, ours = theirs_fields.get(field), entry.fields.get(field)
        if theirs != ours:
            if field == "dataset" and isinstance(theirs, str) and isinstance(ours, str):
                theirs, ours = theirs[:12], ours[:12]
            refuse(FIELD_NAMES.get(field, field), theirs, ours)
    # the fields agree, so a key, file name or id that does not is an edited file
    for field, theirs, ours in (
        ("cache key", payload["key"], entry.key),
        ("cache file", payload["cache_file"], entry.path.name),
        ("extractor id", payload["extractor_id"], entry.extractor_id),
    ):
        if theirs != ours:
            refuse(field, theirs, ours)


def _net_from_bytes(path: Path, raw: bytes, spec, rotation: bool) -> ReferenceCNN:
    outputs = num_outputs(spec, rotation)
    net = ReferenceCNN(spec.channels, outputs)
    try:
        net.load_state_dict(torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True))
    except Exception as err:  # hashes matched, yet not this architecture's state dict
        raise BenchError(
            f"{path}: its weights are not a {ARCHITECTURE} state dict for {spec.channels} channel(s) and "
            f"{outputs} outputs ({type(err).__name__}); {_EXPECTED}"
        ) from None
    return net.eval().requires_grad_(False)
