"""`bench-eval` (score a folder of PNGs or a run's checkpoint) and `bench-rescore` (re-score runs).

Both use the protocol in `conf/protocol/default.yaml` unless `--protocol FILE` names another,
and print or store the same dicts as training does.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from omegaconf import OmegaConf

from bench.checkpoint_files import load_checkpoint
from bench.data import ImageDataModule
from bench.errors import BenchError, exit_on_user_error
from bench.evaluate.image_files import SAMPLES_NAME, load_labels, load_samples, read_png_folder
from bench.evaluate.protocol import evaluate_module, evaluate_samples
from bench.evaluate.settings import Protocol
from bench.metrics_schema import LIKELIHOOD_NA
from bench.record import RECORD_NAME, read_record, write_record

#: bits/dim given the label: measured from the checkpoint, kept when saved samples are re-scored
GIVEN_LABEL_KEYS = ("bits_per_dim_given_label", "elbo_bits_per_dim_given_label")

CONF = Path(__file__).resolve().parents[1] / "conf"


def load_protocol(path: str | None) -> Protocol:
    """The protocol in `path`, else the repository's default, else the built-in defaults."""
    file = Path(path) if path else CONF / "protocol" / "default.yaml"
    if path and not file.is_file():
        raise BenchError(f"--protocol {file}: expected a protocol YAML file")
    return Protocol.from_config(OmegaConf.load(file)) if file.is_file() else Protocol()


def dataset_config(name: str) -> dict:
    file = CONF / "dataset" / f"{name}.yaml"
    return OmegaConf.to_container(OmegaConf.load(file), resolve=True) if file.is_file() else {"name": name}


def load_checkpoint_module(run_dir: Path, record: dict, model_cfg: dict, spec):
    """The run's model with the weights of the checkpoint its record selected."""
    from bench.models.build import build_model

    selected = (record.get("checkpoint") or {}).get("selected") or (record.get("checkpoint") or {}).get("last")
    if not selected:
        raise BenchError(f"{run_dir / RECORD_NAME}: expected a checkpoint.selected path; this run kept none")
    path = run_dir / selected
    module = build_model(model_cfg, spec)
    if not path.is_file():
        raise BenchError(f"{path}: checkpoint not found; expected the file named in {RECORD_NAME}")
    ckpt = load_checkpoint(path)
    state = ckpt["state_dict"] if "state_dict" in ckpt else ckpt
    meta = ckpt.get("bench")
    family = meta.get("family", module.family) if isinstance(meta, dict) else module.family
    if family != module.family:
        raise BenchError(f"{path}: a checkpoint of family {family!r}; expected {module.family!r} as in the run config")
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        first = str(err).strip().splitlines()[0]
        raise BenchError(f"{path}: weights do not fit model {model_cfg.get('name', module.family)!r} ({first})") from None
    return module


def run_config(run_dir: Path, record: dict) -> dict:
    """The record's config, checked to hold the `dataset` and `model` sections a re-evaluation needs."""
    config = record.get("config")
    for key in ("dataset", "model"):
        if not isinstance(config, dict) or not isinstance(config.get(key), dict):
            raise BenchError(f"{run_dir / RECORD_NAME}: expected config.{key} (a mapping) in the record; "
                             "it is missing or not a mapping")
    return config


@exit_on_user_error
def eval_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench-eval", description="Score images or a run under the protocol.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", help="folder of PNG images (dataset size, grey or RGB)")
    source.add_argument("--run", help="run folder with result.json and a checkpoint")
    parser.add_argument("--dataset", default="digits", help="dataset to compare against (with --images)")
    parser.add_argument("--n", type=int, default=None, help="use the first N images (default: all)")
    parser.add_argument("--protocol", default=None, help="protocol YAML (default conf/protocol/default.yaml)")
    parser.add_argument("--out", default=None, help="folder for samples.npz/png (with --run; default: temporary)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    protocol = load_protocol(args.protocol)
    if args.images:
        dm = ImageDataModule(**dataset_config(args.dataset))
        images = read_png_folder(Path(args.images), dm.spec)
        if args.n is not None:
            if not 0 < args.n <= len(images):
                raise BenchError(f"--n {args.n}: expected 1..{len(images)} (images in {args.images})")
            images = images[: args.n]
        result = evaluate_samples(images, dm, protocol)
    else:
        run_dir = Path(args.run)
        record = read_record(run_dir)
        if record is None:
            raise BenchError(f"--run {run_dir}: expected a run folder holding a readable {RECORD_NAME}")
        config = run_config(run_dir, record)
        dm = ImageDataModule(**config["dataset"])
        module = load_checkpoint_module(run_dir, record, config["model"], dm.spec)
        # protocol v2 holds N; a v1 record kept it in its dataset config
        n = args.n or int((config.get("protocol") or {}).get("n_generated")
                          or config["dataset"].get("n_generated") or protocol.n_generated)
        with tempfile.TemporaryDirectory() as tmp:
            result = evaluate_module(module, dm, protocol, n_generated=n, run_dir=Path(args.out or tmp),
                                     seed=int(record.get("seed") or 0))
    print(json.dumps(result, indent=2))


def run_dirs(paths: list[str]) -> list[Path]:
    dirs: list[Path] = []
    for p in map(Path, paths):
        if (p / RECORD_NAME).is_file():
            dirs.append(p)
        elif p.is_dir():
            dirs.extend(sorted(f.parent for f in p.rglob(RECORD_NAME)))
        else:
            raise BenchError(f"{p}: expected a run folder or a folder of runs")
    return dirs


@exit_on_user_error
def rescore_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench-rescore",
                                     description="Re-score saved samples of runs under the current protocol.")
    parser.add_argument("runs", nargs="+", help="run folders, or folders holding them")
    parser.add_argument("--protocol", default=None, help="protocol YAML (default conf/protocol/default.yaml)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    protocol = load_protocol(args.protocol)
    for run_dir in run_dirs(args.runs):
        record = read_record(run_dir)
        if record is None or not (run_dir / SAMPLES_NAME).is_file():
            print(f"skipped {run_dir}: no readable {RECORD_NAME} with {SAMPLES_NAME}")
            continue
        dm = ImageDataModule(**run_config(run_dir, record)["dataset"])
        samples = load_samples(run_dir / SAMPLES_NAME, dm.spec)
        # conditional runs (protocol v3) saved the labels their samples asked for
        labels = load_labels(run_dir / SAMPLES_NAME, len(samples))
        result = evaluate_samples(samples, dm, protocol, seed=int(record.get("seed") or 0), labels=labels)
        old = record.get("metrics") or {}
        # samples carry no likelihood: keep the bits/dim measured from the checkpoint at training time
        likelihood = {k: old.get(k) for k in (*LIKELIHOOD_NA, *GIVEN_LABEL_KEYS)}
        record["metrics"] = {**result["metrics"], **{k: v for k, v in likelihood.items() if k in old}}
        record["protocol"], record["data_floor"] = result["protocol"], result["data_floor"]
        if "per_class" in result:
            record["per_class"] = result["per_class"]
        write_record(run_dir, record)
        print(f"rescored {run_dir}: fid {result['metrics']['fid']:.3f} (protocol v{protocol.version})")
