"""Assemble a report from one or several folders of records (several machines' results merge by
the rules of `bench.report.collect`) and write `report.md` (+ PNGs) and `report.html`.

The HTML is self-contained (figures as PNG data URIs) and rendered by jinja2 with autoescape,
so text from a record (a model name, an error message) can never become markup.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2

from bench.config.claims import ClaimSettings, read_settings, settings_from
from bench.core.atomic import write_bytes_atomic
from bench.core.errors import BenchError
from bench.report import aggregate, claims, compute, plots, ranks, tables, verdicts
from bench.report.collect import Collection, GroupKey, Run, apart, collect

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
QUALITY_NOTE = (
    "Numbers are mean ± 95% confidence interval (t-distribution) over seeds; a value without ± comes from one "
    "run. Since protocol version 2 each seed also draws its own scored samples, so the interval includes "
    "sampling noise. FID, KID, IS, precision/recall and density/coverage are computed in the features of the "
    'protocol\'s reference classifier ("FID (classifier features)"; KID on those features standardized with '
    'the reference set\'s mean and std, "KID (standardized classifier features)"), so they compare only within '
    "a group: groups differ in dataset, protocol version, extractor, budget (and, under a time budget, the "
    "device class: device, threads, jobs sharing the machine) or sample count N, and are never averaged together. The data floor scores N real training images as if they were generated: its value is "
    "the mean ± 95% CI over several draws (since protocol v6 it covers a new draw of the reference set too: see "
    '"Uncertainty of FID"), and "× floor" carries the uncertainty of both the model and the floor (they share '
    "the reference set, so since v6 it is conservative). The classifier was trained on those images, which can make the floor optimistic; at "
    "small N the draw's noise can outweigh that. Memorization is the share of samples nearer (in pixels) to a "
    "training image than the 5th percentile of validation-to-train distances: the validation split that sets "
    "the threshold scores 0.05 by construction, other held-out images about 0.02 on digits, a copier about 1."
)
CONDITIONAL_NOTE = (
    "Conditional runs (protocol version 3) score N samples asked for labels spread evenly over the classes. "
    "Accuracy is the share the reference classifier assigns to the asked class; per-class KID compares each "
    "class's samples with that class's reference images (standardized classifier features; mean over classes "
    "and the worst class; no per-class FID: a class's few reference images make its feature covariance "
    "singular). Bits/dim given the label is -log2 p(x | y) on the test images with their true labels, beside "
    "the marginal -log2 sum_y p(y) p(x | y) under a uniform class prior (the one unconditional models are "
    "scored on). The data floor draws real training images evenly by class; the classifier was trained on "
    "them, so its accuracy is optimistic."
)
GUIDANCE_NOTE = (
    "Each guidance weight w draws N conditional samples with the run's scoring seed and labels "
    "(w = 0 is the scored draw); headline numbers always use w = 0."
)
SELECTION_NOTE = (
    "Since protocol version 5 one rule per table holds for every trained model: the sample metrics are scored at "
    "the checkpoint with the best validation sample quality (the protocol's selection statistic, FID or KID of "
    "generated images against the validation split, measured at every validation), bits/dim at the checkpoint "
    "with the best validation bits/dim. Models fitted in closed form have one set of weights. Earlier versions "
    "scored likelihood models at their best validation bits/dim and the others at their final weights."
)
UNCERTAINTY_NOTE = (
    "Two sources of uncertainty in FID. Seed-to-seed: the spread of the runs' FIDs over seeds, which holds "
    "training and each seed's own draw of scored samples against the one reference set; the 95% CI over seeds "
    "uses it and is conditional on that reference set, which every row shares (a new reference set would move "
    "all rows together, so comparisons between rows do not carry it). Within-run sampling: the sd of one run's "
    "FID over new draws of both the generated and the reference images, by a grouped jackknife (50 groups a "
    "side); on digits most of it is the 450 reference images, which is why it can exceed the seed-to-seed sd. "
    "Intervals target the expected FID at this N (FID is biased ~1/N), not the population distance. The data "
    "floor's draws share most of their images and all of the reference set, so its interval is the mean over "
    "draws ± 1.96 × a draw's sampling sd, which covers a new draw of both; near distance 0 the jackknife "
    "overstates the sd, so this interval is conservative (benchmarks/interval_coverage.py)."
)
COMPUTE_NOTE = (
    "Training FLOPs are images seen × the model's FLOPs per training image (forward and backward of one "
    "training step, counted once per model: analytic where a counter cannot see the ops, e.g. nn.LSTM, else "
    "torch.utils.flop_counter); sampling FLOPs are per generated image. The equal-compute table reads each "
    "run's quality curve (the cheap FID of the curve's few samples against the validation split, not the "
    "headline FID), linearly in log FLOPs between the measurements around each level, at levels every trained "
    "run reaches: interpolated, never extrapolated. A model is on the Pareto front unless another trained "
    "model samples with no more FLOPs at no worse mean FID; closed-form baselines are shown as reference "
    "points only."
)
BPD_NOTE = (
    "A bound (VAE ELBO/IWAE) is an upper bound on the exact value; exact and bound values "
    "rank the same way only if the bound is tight."
)


@dataclass
class Figure:
    """A PNG to write beside report.md and embed in report.html."""

    filename: str
    caption: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class GroupView:
    """Everything the templates show for one comparison group."""

    key: GroupKey
    runs: int
    quality: tables.Table
    cost: tables.Table
    rankings: list[tuple[aggregate.Ranking, tables.Table, tables.Table]]
    figures: list[Figure] = field(default_factory=list)
    samples: list[Figure] = field(default_factory=list)
    protocol: tables.Table | None = None
    conditional: tables.Table | None = None  # only for groups of conditional runs
    guidance: tables.Table | None = None  # only when a guidance sweep ran
    class_samples: list[Figure] = field(default_factory=list)  # one row per class, one seed per model
    selection: tables.Table | None = None  # which checkpoint each table scores; tuning budgets
    uncertainty: tables.Table | None = None  # FID's seed-to-seed and within-run sampling spread
    tuning_warnings: list[str] = field(default_factory=list)
    equal_compute: tables.Table | None = None  # FID at equal training FLOPs, from the quality curves
    pareto: tables.Table | None = None  # FID against sampling FLOPs per image
    apart: list[str] = field(default_factory=list)  # why each similar group was kept apart from this one


def _slug(text: str) -> str:
    """A file-name-safe form of `text` that stays unique (a hash of the original is appended)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")[:40] or "x"
    return f"{safe}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def _flatten(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        items: list[tuple[str, Any]] = []
        for key, value in node.items():
            items.extend(_flatten(value, f"{prefix}{key}."))
        return items
    return [(prefix.rstrip("."), node)]


def _sample_grid(run: Run, key: str = "samples_grid", default: str = "samples.png") -> bytes | None:
    """The run's samples.png bytes (or the file at `paths[key]`), or None when absent or not a PNG."""
    relative = (run.record.get("paths") or {}).get(key) or default
    path = (run.folder / relative).resolve()
    if not path.is_relative_to(run.folder.resolve()) or not path.is_file():
        return None
    data = path.read_bytes()
    return data if data.startswith(PNG_MAGIC) else None


def _group_view(index: int, key: GroupKey, runs: list[Run]) -> GroupView:
    rows = aggregate.model_rows(runs)
    floor = aggregate.data_floor(runs)
    aggregate.attach_floor_ratio(rows, floor)
    rankings = []
    for metric in ("fid", "bits_per_dim", *(("accuracy",) if key.conditional else ())):
        ranking = aggregate.rank(rows, metric)
        if ranking.rows:
            rankings.append((ranking, tables.ranking_table(ranking), tables.pairwise_table(ranking)))
    view = GroupView(
        key=key,
        runs=len(runs),
        quality=tables.quality_table(rows, floor),
        cost=tables.cost_table(rows),
        rankings=rankings,
    )
    view.selection, view.tuning_warnings = tables.selection_table(rows)
    sampling = [row.summaries.get("fid_sampling_std") for row in rows] + [floor.get("fid_sampling_std")]
    if any(s is not None and s.n for s in sampling):
        view.uncertainty = tables.uncertainty_table(rows, floor)
    if key.conditional:
        view.conditional = tables.conditional_table(rows, floor)
    sweeps = [(row, sweep) for row in rows if (sweep := aggregate.guidance_sweep(row)) is not None]
    if key.conditional and sweeps:
        view.guidance = tables.guidance_table(sweeps)
    floor_fid = floor["fid"].mean if floor else None
    equal = compute.equal_compute(rows)
    view.equal_compute = tables.equal_compute_table(equal) if equal is not None else None
    front = compute.pareto(rows)
    view.pareto = tables.pareto_table(front) if front else None
    prefix = f"group{index}"
    for name, caption, png in (
        ("quality_vs_time", "Quality over training time", plots.quality_vs_time(rows)),
        ("quality_vs_flops", "Quality over training FLOPs", plots.quality_vs_flops(rows)),
        ("quality_vs_speed", "Quality vs sampling speed", plots.quality_vs_speed(rows, floor_fid)),
        ("pareto", "FID vs sampling FLOPs per image: the Pareto front", plots.pareto_front(front, floor_fid)),
        (
            "guidance",
            "Accuracy vs FID under classifier-free guidance",
            plots.guidance_tradeoff(sweeps) if key.conditional else None,
        ),
    ):
        if png is not None:
            view.figures.append(Figure(f"{prefix}_{name}.png", caption, png))
    for row in rows:
        for run in sorted(row.runs, key=lambda r: str(r.seed)):
            png = _sample_grid(run)
            if png is not None:
                caption = f"{row.model}, seed {run.seed}"
                view.samples.append(Figure(f"{prefix}_samples_{_slug(row.model)}.png", caption, png))
                break
        for run in sorted(row.runs, key=lambda r: str(r.seed)) if key.conditional else ():
            png = _sample_grid(run, "samples_by_class", "samples_by_class.png")
            if png is not None:
                caption = f"{row.model}, seed {run.seed} (row c: class c)"
                view.class_samples.append(Figure(f"{prefix}_classes_{_slug(row.model)}.png", caption, png))
                break
    protocol = runs[0].record.get("protocol")
    if isinstance(protocol, dict):
        view.protocol = tables.mapping_table(_flatten(protocol))
    return view


def separations(keys: list[GroupKey]) -> dict[GroupKey, list[str]]:
    """For each group, why each other group of the same dataset and conditioning stands apart
    (groups of other datasets are apart by name alone): 'group 2: budget kind time vs flops'."""
    result: dict[GroupKey, list[str]] = {}
    for key in keys:
        result[key] = [
            f"group {j + 1}: " + "; ".join(apart(key, other))
            for j, other in enumerate(keys)
            if other != key and other.dataset == key.dataset and other.conditional == key.conditional
        ]
    return result


def _environment(collection: Collection) -> tables.Table:
    """Each environment key with the distinct values seen across all records."""
    seen: dict[str, list[str]] = {}
    runs = [r for group in collection.groups.values() for r in group] + collection.incomplete
    for run in runs:
        for key, value in _flatten(run.record.get("environment") or {}):
            values = seen.setdefault(key, [])
            if str(value) not in values:
                values.append(str(value))
    return tables.mapping_table([(k, ", ".join(v)) for k, v in sorted(seen.items())])


def _environment_jinja(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bench.report", "templates"),
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["md"] = lambda text: (
        str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
    )
    return env


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    groups: int
    completed: int
    incomplete: int
    skipped: int
    #: one line per group: its title and why each similar group stands apart from it
    groups_said: tuple[str, ...] = ()


def claim_settings(roots: Path | list[Path], found: Collection) -> ClaimSettings:
    """The claims for the folders: their `claims.json` (written by bench-compare; merged, first
    folder first), else the claims and margins in the records' configs (a `bench-train -m` sweep),
    tested with a fixed number of seeds."""
    roots = [Path(roots)] if isinstance(roots, (str, Path)) else [Path(r) for r in roots]
    written = [s for s in (read_settings(root) for root in roots) if s is not None]
    if written:
        return written[0] if len(written) == 1 else _merged(written)
    texts: dict[str, None] = {}
    margins: dict = {}
    for run in (r for group in found.groups.values() for r in group):
        config = run.record.get("config") or {}
        for text in config.get("claims") or []:
            texts.setdefault(text)
        for metric, value in (config.get("claim_margin") or {}).items():
            margins.setdefault(metric, value)
    where = f"{roots[0]}: the records' config "
    return settings_from({"claims": list(texts), "claim_margin": margins}, where=where)


def _merged(settings: list[ClaimSettings]) -> ClaimSettings:
    """Several folders' claims as one list (each claim once; the first folder's margin per metric)."""
    claims_ = list(dict.fromkeys(c for s in settings for c in s.claims))
    margins: dict = {}
    for s in settings:
        for metric, value in s.margins.items():
            margins.setdefault(metric, value)
    first = settings[0]
    return replace(
        first,
        claims=tuple(claims_),
        margins=margins,
        decide=any(s.decide for s in settings),
        max_seeds=max(s.max_seeds for s in settings),
    )


def _average_ranks(found: Collection) -> tuple[tables.Table, str] | None:
    """Average FID ranks over the groups when they span several datasets (else None)."""
    if len({key.dataset for key in found.groups}) < 2:
        return None
    blocks = {
        verdicts.group_label(key): aggregate.model_rows(runs)
        for key, runs in sorted(found.groups.items(), key=lambda kv: repr(kv[0]))
    }
    average = ranks.average_ranks(blocks, "fid")
    return tables.average_rank_table(average) if average is not None else None


def build_report(
    roots: Path | list[Path],
    out_dir: Path | None = None,
    title: str | None = None,
    settings: ClaimSettings | None = None,
) -> ReportFiles:
    """Scan the folders `roots` (one, or several machines' results) for records and write report.md,
    its PNGs and report.html into `out_dir` (default: the first folder); `settings` (default:
    `claim_settings`) are the claims it opens with."""
    roots = [Path(roots)] if isinstance(roots, (str, Path)) else [Path(r) for r in roots]
    for root in roots:
        if not root.is_dir():
            raise BenchError(f"report folder {root}: expected an existing folder of run records")
    out_dir = Path(out_dir) if out_dir is not None else roots[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    found = collect(roots)
    settings = settings if settings is not None else claim_settings(roots, found)
    results = claims.evaluate(found.groups, settings)
    ordered = sorted(found.groups.items(), key=lambda kv: repr(kv[0]))
    reasons = separations([key for key, _ in ordered])
    groups = [_group_view(i + 1, key, runs) for i, (key, runs) in enumerate(ordered)]
    for group in groups:
        group.apart = reasons[group.key]
    context = dict(
        title=title or f"bench report: {' + '.join(root.name for root in roots)}",
        created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        root=", ".join(str(root) for root in roots),
        groups=groups,
        completed=sum(g.runs for g in groups),
        failed=tables.failed_table(found.incomplete, roots[0]) if found.incomplete else None,
        skipped=found.skipped,
        environment=_environment(found),
        bpd_note=BPD_NOTE,
        selection_note=SELECTION_NOTE,
        uncertainty_note=UNCERTAINTY_NOTE,
        quality_note=QUALITY_NOTE,
        compute_note=COMPUTE_NOTE,
        conditional_note=CONDITIONAL_NOTE,
        guidance_note=GUIDANCE_NOTE,
        alpha=aggregate.ALPHA,
        claims=verdicts.claims_table(results) if results else None,
        answer=verdicts.answer(results, claims.untested(found.groups, settings)),
        claims_note=verdicts.CLAIMS_NOTE,
        sequential_note=verdicts.SEQUENTIAL_NOTE if settings.decide else None,
        ranks=_average_ranks(found),
    )
    for group in groups:
        for figure in group.figures + group.samples + group.class_samples:
            write_bytes_atomic(out_dir / figure.filename, figure.png)
    markdown = out_dir / "report.md"
    write_bytes_atomic(markdown, _environment_jinja(False).get_template("report.md.j2").render(**context).encode())
    html = out_dir / "report.html"
    write_bytes_atomic(html, _environment_jinja(True).get_template("report.html.j2").render(**context).encode())
    said = tuple(
        f"group {i + 1}: {g.key.title()}" + "".join(f"\n  kept apart from {line}" for line in g.apart)
        for i, g in enumerate(groups)
    )
    return ReportFiles(
        markdown, html, len(groups), context["completed"], len(found.incomplete), len(found.skipped), said
    )
