"""`bench-report DIR [DIR ...]`: write report.md and report.html for the records under the folders
(several machines' results merge into one report; groups that cannot be compared stay apart, and
the command says why)."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from bench.core.errors import exit_on_user_error
from bench.report.render import build_report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench-report", description=__doc__)
    parser.add_argument(
        "folders", type=Path, nargs="+", help="folders scanned for **/result.json (e.g. results/compare)"
    )
    parser.add_argument("--out", type=Path, default=None, help="where to write the report (default: the first folder)")
    parser.add_argument("--title", default=None, help="report title")
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", flush=True)


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    warnings.showwarning = _show_warning  # one plain line per skipped record
    files = build_report(args.folders, args.out, args.title)
    for line in files.groups_said:
        print(line)
    print(
        f"report: {files.markdown} and {files.html} ({files.completed} completed, "
        f"{files.incomplete} not completed, {files.skipped} skipped, {files.groups} group(s))"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
