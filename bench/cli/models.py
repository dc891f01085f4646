"""`bench-models`: every model config (built-in and from plugins) with its family, likelihood kind,
where it comes from, and its sampling parameter count at the default dataset.

Names come from the same config folders and family registry that `bench-train` and
`bench-compare` use, so a name listed here is a name they accept.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from bench.config.choices import config_roots, group_choices
from bench.config.compose import compose_choice, dataset_config
from bench.config.plugins import family_source
from bench.core.errors import BenchError, exit_on_user_error
from bench.data import ImageDataModule
from bench.models.build import build_model
from bench.models.registry import usable_families


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    likelihood: str
    source: str
    sampling_parameters: int | None
    problem: str | None = None


def model_entries(dataset: str | None = None) -> list[ModelEntry]:
    """One entry per model config Hydra can see; a config that does not build says why in `problem`."""
    families = usable_families()
    entries = []
    spec = ImageDataModule(**dataset_config(dataset)).spec
    for name in sorted(group_choices("model", config_roots([]))):
        cfg = compose_choice("model", name)
        family = str(cfg.get("family"))
        cls = families.get(family)
        if cls is None:
            entries.append(ModelEntry(name, family, "?", "?", None, f"family {family!r} is not available"))
            continue
        try:
            count = build_model(cfg, spec).num_parameters("sampling")
            problem = None
        except Exception as err:  # a plugin's bug must not hide the other models
            count, problem = None, str(err) if isinstance(err, BenchError) else f"{type(err).__name__}: {err}"
        entries.append(ModelEntry(name, family, cls.likelihood, family_source(family).describe(), count, problem))
    return entries


def format_table(entries: list[ModelEntry]) -> str:
    rows = [("model", "family", "likelihood", "source", "sampling params")]
    rows += [
        (
            e.name,
            e.family,
            e.likelihood,
            e.source,
            f"{e.sampling_parameters:,}" if e.sampling_parameters is not None else f"- ({e.problem})",
        )
        for e in entries
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows)


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-models", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", default=None, help="count parameters at this dataset config (default: the default)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    print(format_table(model_entries(args.dataset)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
