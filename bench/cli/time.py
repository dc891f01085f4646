"""`bench-time RUNS...`: measure sampling speed one run at a time, with nothing else of the sweep running.

The measurement is `bench.pipeline.timing_pass`; this is its command line.
"""

from __future__ import annotations

import argparse
import sys

from bench.cli.options import add_received_run_options, names_one_run
from bench.core.errors import BenchError, exit_on_user_error
from bench.core.records import run_dirs
from bench.pipeline.saved_run import read_saved_run
from bench.pipeline.timing_pass import time_runs


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-time", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders, or folders holding them")
    parser.add_argument("--threads", type=int, default=1, help="torch threads while timing (default 1)")
    parser.add_argument("--all", action="store_true", help="time completed runs again, not only deferred ones")
    add_received_run_options(parser)
    args = parser.parse_args(argv)
    if args.threads < 1:
        raise BenchError(f"--threads {args.threads}: expected a positive integer")
    dirs = run_dirs(args.runs)
    if names_one_run(args.runs, dirs):  # a refusal of the one run named is the command's own: exit 2
        read_saved_run(dirs[0], root=args.root, trusted_networks=set(args.allow_network))
    failed = time_runs(dirs, args.threads, args.all, root=args.root, trusted_networks=set(args.allow_network))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
