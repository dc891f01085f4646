"""Command-line options shared by the commands that rebuild runs from received records."""

from __future__ import annotations

import argparse
from pathlib import Path


def names_one_run(paths: list[str], dirs: list[Path]) -> bool:
    """Whether the command line named a single run folder (its refusal is then the command's: exit 2)."""
    return len(paths) == 1 and dirs == [Path(paths[0])]


def add_received_run_options(parser: argparse.ArgumentParser, networks: bool = True) -> None:
    """Options of commands that rebuild runs from their records (`bench.pipeline.saved_run`)."""
    parser.add_argument(
        "--root", default=None, help="folder holding the dataset's files (default: the root in each run's record)"
    )
    if networks:
        parser.add_argument(
            "--allow-network",
            action="append",
            default=[],
            metavar="TARGET",
            help="also build this network class (a dotted path, as in model.net._target_) "
            "when a record names it; by default only the networks a family declares",
        )
