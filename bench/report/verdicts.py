"""The report's opening: the Claims table and the sentences that say what is decided and what is not."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean

from bench.core.schema import METRIC_BY_KEY
from bench.report.claims import ALPHA, Result
from bench.report.collect import GroupKey, fmt_budget
from bench.report.tables import Table, fmt_number

CLAIMS_NOTE = (
    "A claim 'a < b on metric' says a ranks ahead of b (lower FID or bits/dim, higher IS); a side is a family "
    "(or a model) and is tested on every pair of models matching it in each group. Difference: mean(a) − mean(b) "
    "over seeds with its 95% interval; p: Welch's t-test, two-sided, Holm-corrected across all the report's "
    f"claims; a claim is supported or contradicted when that p < {ALPHA}, equivalent when TOST within ±margin "
    "(claim_margin, Holm-corrected) is significant, and undecided otherwise. Seeds needed: an estimate of the "
    "seeds per model that would give 80% power for a difference equal to the margin at the first Holm level, "
    "from the pooled seed variance — for planning, not post-hoc power at the observed difference."
)
SEQUENTIAL_NOTE = (
    "These claims were decided by a group-sequential design (bench-compare decide=true): looks after each added "
    "seed, Lan–DeMets O'Brien–Fleming-type alpha spending over the planned looks, Holm's procedure recycled "
    "across claims and looks; each claim's p-value is compared with its look's nominal level, and its interval "
    "is the repeated confidence interval at that look, valid whichever look stopped it. A decided claim keeps "
    "its verdict when later seeds are added for other claims."
)


def group_label(key: GroupKey) -> str:
    label = f"{key.dataset} · {fmt_budget(key.budget_value, key.budget_kind)}"
    label += f" · v{key.protocol_version} · N={key.n_generated}"
    return label + (f" · {key.device_class}" if key.device_class else "")


def _side(name: str, model: str) -> str:
    return name if model == name else f"{name} ({model})"


def _interval(result: Result) -> str:
    if result.difference is None:
        return "–"
    text = fmt_number(result.difference)
    if result.interval is not None:
        low, high = result.interval
        text += f" [{fmt_number(low)}, {fmt_number(high)}]"
    return text


def _means(r: Result) -> str:
    """The two sides' means over the seeds behind the verdict (under `decide`: the deciding look's)."""
    n = r.seeds_tested if r.sequential and r.seeds_tested else None
    a, b = (fmean(side.values[:n]) if side.values else None for side in (r.better, r.worse))
    return f"{fmt_number(a)} vs {fmt_number(b)}"


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.2g}"


def claims_table(results: Sequence[Result]) -> Table:
    sequential = any(r.sequential for r in results)
    header = ["claim", "group", "models", "seeds", "means", "difference [95% CI]"]
    header += ["p (look level)" if sequential else "p (Holm)", "equivalence p (TOST, Holm)", "verdict"]
    header += ["seeds needed (estimate)"]
    body = []
    for r in results:
        p_cell = _p(r.p_holm)
        if r.sequential:
            p_cell = "–" if r.p_value is None else f"{_p(r.p_value)} ({_p(r.level)})"
        body.append(
            [
                r.claim.text,
                group_label(r.group),
                f"{r.better.model} vs {r.worse.model}",
                f"{len(r.better.values)} vs {len(r.worse.values)}",
                _means(r),
                _interval(r),
                p_cell,
                _p(r.p_equivalence) if not r.sequential else "–",
                r.verdict + (f" at {r.seeds_tested} seeds" if r.sequential and r.verdict != "undecided" else ""),
                str(r.seeds_needed) if r.seeds_needed is not None else (r.note or "–"),
            ]
        )
    return Table(header, body)


def sentence(r: Result) -> str:
    """One quotable sentence on a claim's result."""
    label = METRIC_BY_KEY[r.claim.metric].label
    a, b = _side(r.claim.better, r.better.model), _side(r.claim.worse, r.worse.model)
    means = _means(r)
    evidence = f"difference {_interval(r)}"
    if r.sequential:
        evidence += f", p = {_p(r.p_value)} at the look's level {_p(r.level)}, {r.seeds_tested} seeds each"
    else:
        evidence += f", Holm p = {_p(r.p_holm)}"
    if r.verdict == "supported":
        return f"{a} beats {b} on {label}: {means}, {evidence}."
    if r.verdict == "contradicted":
        return f"'{r.claim.text}' is contradicted: {b} beats {a} on {label}: {means}, {evidence}."
    if r.verdict == "equivalent":
        return (
            f"{a} and {b} are equivalent on {label} within ±{fmt_number(r.margin)}: {means}, difference "
            f"{_interval(r)}, TOST Holm p = {_p(r.p_equivalence)}."
        )
    seeds = r.seeds_tested or min(len(r.better.values), len(r.worse.values))
    text = f"{a} vs {b} on {label} is undecided at {seeds} seeds ({means}"
    text += f", {evidence})" if r.p_value is not None else f"; {r.note})"
    if r.seeds_needed is not None:
        text += f"; ~{r.seeds_needed} seeds each would decide a difference of {fmt_number(r.margin)}"
    return text + "."


def answer(results: Sequence[Result], untested: Sequence[str]) -> list[tuple[str, str]]:
    """Per group (dataset, budget, protocol, N): what is decided first, then what is not."""
    by_group: dict[GroupKey, list[Result]] = {}
    for r in results:
        by_group.setdefault(r.group, []).append(r)
    paragraphs = []
    for key, group in sorted(by_group.items(), key=lambda kv: repr(kv[0])):
        decided = [r for r in group if r.verdict != "undecided"]
        open_ = [r for r in group if r.verdict == "undecided"]
        head = f"{len(decided)} of {len(group)} claim(s) decided."
        paragraphs.append((group_label(key), " ".join([head, *map(sentence, decided + open_)])))
    if untested:
        paragraphs.append(("not tested", " ".join(untested)))
    return paragraphs
