"""`bench-eval` (score a folder of PNGs or a run's checkpoint) and `bench-rescore` (re-score runs).

Both use the protocol in `bench/conf/protocol/default.yaml` unless `--protocol FILE` names another,
and print or store the same dicts as training does.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from bench.cli.options import add_received_run_options, names_one_run
from bench.config.compose import dataset_config, load_protocol
from bench.core.errors import BenchError, exit_on_user_error
from bench.core.records import RECORD_NAME, run_dirs
from bench.data import ImageDataModule
from bench.evaluate.image_files import SAMPLES_NAME, read_png_folder
from bench.evaluate.score import evaluate_module, evaluate_samples
from bench.pipeline.rescore import rescore_run
from bench.pipeline.saved_run import read_saved_run


@exit_on_user_error
def eval_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench-eval", description="Score images or a run under the protocol.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", help="folder of PNG images (dataset size, grey or RGB)")
    source.add_argument("--run", help="run folder with result.json and a checkpoint")
    parser.add_argument("--dataset", default="digits", help="dataset to compare against (with --images)")
    parser.add_argument("--n", type=int, default=None, help="use the first N images (default: all)")
    parser.add_argument("--protocol", default=None, help="protocol YAML (default bench/conf/protocol/default.yaml)")
    parser.add_argument("--out", default=None, help="folder for samples.npz/png (with --run; default: temporary)")
    add_received_run_options(parser)
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
        run = read_saved_run(Path(args.run), root=args.root, trusted_networks=set(args.allow_network))
        dm = run.datamodule()
        module = run.module(dm.spec)
        config = run.record["config"]
        # protocol v2 holds N; a v1 record kept it in its dataset config
        n = args.n or int(
            (config.get("protocol") or {}).get("n_generated")
            or config["dataset"].get("n_generated")
            or protocol.n_generated
        )
        with tempfile.TemporaryDirectory() as tmp:
            result = evaluate_module(
                module,
                dm,
                protocol,
                n_generated=n,
                run_dir=Path(args.out or tmp),
                seed=int(run.record.get("seed") or 0),
                likelihood_state=run.likelihood_state(module),
            )
    print(json.dumps(result, indent=2))


@exit_on_user_error
def rescore_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench-rescore", description="Re-score saved samples of runs under the current protocol."
    )
    parser.add_argument("runs", nargs="+", help="run folders, or folders holding them")
    parser.add_argument("--protocol", default=None, help="protocol YAML (default bench/conf/protocol/default.yaml)")
    add_received_run_options(parser, networks=False)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    protocol = load_protocol(args.protocol)
    refused = 0
    dirs = run_dirs(args.runs)
    for run_dir in dirs:
        if not (run_dir / SAMPLES_NAME).is_file():
            print(f"skipped {run_dir}: no {SAMPLES_NAME} beside its {RECORD_NAME}")
            continue
        try:
            rescore_run(read_saved_run(run_dir, root=args.root), protocol)
        except BenchError as err:  # one refused or unreadable run of several: say so, score the others
            if names_one_run(args.runs, dirs):
                raise
            refused += 1
            print(f"error: {err}", file=sys.stderr, flush=True)
    return 1 if refused else 0
