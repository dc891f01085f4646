"""Do two results folders hold the same numbers? (a check after a change meant to alter no result)

Pairs the records of two sweep folders by run name (the part before the config hash, which a
change of hashed keys may move) and compares, per run: `metrics`, `data_floor`,
`training.samples_seen` and the selected checkpoint (its path and when it was taken). Timing is
left out: it is measured, not computed. Under a samples-seen budget every compared field is
deterministic, so any difference is a change in behaviour.

    bench-compare experiment=compare_smoke budget=samples budget.value=3000 results_dir=/tmp/before
    (change the code)
    bench-compare experiment=compare_smoke budget=samples budget.value=3000 results_dir=/tmp/after
    python benchmarks/same_records.py /tmp/before/compare_smoke /tmp/after/compare_smoke

Prints one line per run and exits 1 if any field differs or a run is missing on one side.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FIELDS = (
    "metrics",
    "data_floor",
    "training.samples_seen",
    "checkpoint.selected",
    "checkpoint.selected_at.step",
    "checkpoint.selected_at.samples_seen",
    "status",
)


def records(folder: Path) -> dict[str, dict]:
    return {path.parent.name.split("__")[0]: json.loads(path.read_text()) for path in folder.glob("*/result.json")}


def field(record: dict, dotted: str):
    value = record
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    before, after = records(args.before), records(args.after)
    differing = 0
    for name in sorted(before.keys() | after.keys()):
        if name not in before or name not in after:
            print(f"{name}: only in {'after' if name in after else 'before'}")
            differing += 1
            continue
        changed = [f for f in FIELDS if field(before[name], f) != field(after[name], f)]
        differing += bool(changed)
        print(
            f"{name}: {'differs in ' + ', '.join(changed) if changed else 'identical'} "
            f"(fid {field(after[name], 'metrics.fid')})"
        )
    print(f"{len(before.keys() & after.keys()) - differing} of {len(before.keys() | after.keys())} run(s) identical")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
