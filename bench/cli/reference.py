"""`bench-reference export PATH [overrides]` and `bench-reference import PATH [overrides] [--force]`.

Carries the reference classifier a machine trained for a dataset (cached in `$BENCH_CACHE`) to
another machine, so both score with the same one (`bench.evaluate.reference.transfer`). The
dataset and the protocol version come from the config `bench-train` composes with the same
overrides (`dataset=mnist dataset.root=/data`, `protocol.version=...`): give the import the
overrides the export had, up to paths such as `dataset.root`.
"""

from __future__ import annotations

import argparse
import sys

import torch
from omegaconf import OmegaConf

from bench.config.choices import check_group_choices
from bench.config.compose import compose_all
from bench.core.errors import exit_on_user_error
from bench.data import ImageDataModule
from bench.evaluate.reference.extractor import dataset_fingerprint
from bench.evaluate.reference.transfer import check_import, export_reference, install
from bench.evaluate.reference_set import first_use_lock


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="bench-reference",
        description="Export a dataset's cached reference classifier to a file, or import one, so two "
        "machines score with the same extractor.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="write the cached classifier (trained now if absent) to PATH")
    imported = actions.add_parser("import", help="check the classifier in PATH and install it in $BENCH_CACHE")
    for sub in (export, imported):
        sub.add_argument("path", help="the export file")
        sub.add_argument("overrides", nargs="*", help="config overrides choosing the dataset, e.g. dataset=mnist")
    imported.add_argument("--force", action="store_true", help="replace a different classifier cached under its key")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(1)
    check_group_choices(args.overrides)
    (cfg,) = compose_all([args.overrides])
    datamodule = ImageDataModule(**OmegaConf.to_container(cfg.dataset, resolve=True))
    version = int(cfg.protocol.version)
    # the lock a sweep's jobs take before they train or load this dataset's network
    lock = first_use_lock(datamodule.spec.name, dataset_fingerprint(datamodule))
    if args.action == "export":
        with lock:
            done = export_reference(datamodule, version, args.path)
        print(
            f"exported {done['extractor_id']} to {done['file']}\n"
            f"  sha256 {done['sha256'][:12]}, from {done['cache_file']}\n"
            f"  test accuracy {done['test_accuracy']} on {done['n_test_images']} test images (recorded)"
        )
        return
    checked = check_import(args.path, datamodule, version)  # reads and measures; writes nothing
    with lock:
        done = install(checked, force=args.force)
    print(
        f"imported {done['file']} -> {done['cache_file']}: {done['installed']}\n"
        f"  extractor {done['extractor_id']}\n"
        f"  dataset {done['dataset']}, fingerprint {done['dataset_fingerprint'][:12]}, protocol version "
        f"{done['protocol_version']}, cache key {done['key']}: match this machine's config\n"
        f"  sha256 {done['sha256'][:12]}: the weights hash to the recorded sha256\n"
        f"  test accuracy recorded {done['test_accuracy_recorded']}, measured here {done['test_accuracy_measured']} "
        f"on {done['n_test_images']} test images (tolerance {done['tolerance']:.2g})"
    )


if __name__ == "__main__":
    main()
