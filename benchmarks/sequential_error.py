"""How often does `bench-compare decide=true` declare a difference that is not there? (sequential design)

    python benchmarks/sequential_error.py [--comparisons 10000] [--power-comparisons 4000]
        [--four-claim-comparisons 2000] [--seed 0]

Simulates the compare loop exactly as it runs: every model starts with `first` = 3 seeds, the
claims are decided with `bench.report.sequential.decide`, and while `still_open` names claims, one
new seed is added to each of their models (max_seeds = 10, alpha = 0.05). One seed's metric value
is the model's true mean plus noise of standard deviation 1: normal, or Student-t with 3 degrees of
freedom scaled to unit variance (heavy tails, as a metric with an occasional bad seed).

Reported, per scenario: the rate of "supported" and "contradicted" verdicts with a 95%
Clopper-Pearson interval (`scipy.stats.binomtest`), the mean seeds per model the loop used, and the
same loop with the naive rule (Welch's test at alpha after every seed) and with one fixed-size test
at max_seeds. Scenarios: one claim under the null (equal means) and at true differences of 1.0, 1.5
and 2.0 seed standard deviations; four claims "A better than B_j" sharing model A, under the global
null (familywise false-positive rate), all at 1.5, and two at 1.5 with two null.
Writes `benchmarks/results/sequential_error.json`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from scipy import stats

from bench.report.sequential import ClaimSeries, Decision, Design, decide, still_open, welch

DESIGN = Design(first=3, max_seeds=10, alpha=0.05)
RESULT = Path(__file__).resolve().parent / "results" / "sequential_error.json"


def seed_noise(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Per-seed noise with unit standard deviation: "normal" or "t3" (Student-t, 3 df, scaled)."""
    if kind == "normal":
        return rng.standard_normal(size)
    if kind == "t3":
        return rng.standard_t(3, size) / np.sqrt(3.0)  # t_3 has variance 3
    raise ValueError(f"noise={kind!r}: expected 'normal' or 't3'")


def naive_decide(series: Sequence[ClaimSeries], design: Design) -> list[Decision]:
    """The rule the design replaces: Welch's test at alpha after every seed, each claim on its own."""
    out = []
    for s in series:
        verdict, seeds, p = "undecided", min(s.seeds, design.max_seeds), None
        for n in range(design.first, seeds + 1):
            p = float(welch(s.a[:n], s.b[:n]).pvalue)
            if p <= design.alpha:
                holds = np.sign(np.mean(s.a[:n]) - np.mean(s.b[:n])) == s.expected
                verdict, seeds = ("supported" if holds else "contradicted"), n
                break
        out.append(Decision(verdict, seeds, p, design.alpha, None, None))
    return out


def fixed_decide(series: Sequence[ClaimSeries], design: Design) -> list[Decision]:
    """One Welch test at alpha with max_seeds seeds per model (no early stop, no multiplicity)."""
    out = []
    for s in series:
        verdict, n = "undecided", min(s.seeds, design.max_seeds)
        if n == design.max_seeds:
            p = float(welch(s.a[:n], s.b[:n]).pvalue)
            if p <= design.alpha:
                holds = np.sign(np.mean(s.a[:n]) - np.mean(s.b[:n])) == s.expected
                verdict = "supported" if holds else "contradicted"
        out.append(Decision(verdict, n, None, design.alpha, None, None))
    return out


def run_loop(
    means: Sequence[float],
    claims: Sequence[tuple[int, int]],
    noise: np.ndarray,
    design: Design,
    rule: Callable[[Sequence[ClaimSeries], Design], list[Decision]],
) -> tuple[list[str], list[int]]:
    """One comparison as the compare loop runs it. `noise` [models, max_seeds] holds each model's
    seeds in order (a seed is revealed when the loop adds it); claim (i, j) says model i has the
    lower mean (expected = -1). Returns the verdicts and the seeds each model ended with."""
    seeds = [design.first] * len(means)
    while True:
        values = [means[m] + noise[m, : seeds[m]] for m in range(len(means))]
        series = [ClaimSeries(values[i], values[j], expected=-1) for i, j in claims]
        decisions = rule(series, design)
        open_claims = still_open(decisions, series, design)
        if not open_claims:
            return [d.verdict for d in decisions], seeds
        for m in sorted({m for c in open_claims for m in claims[c]}):
            seeds[m] = min(seeds[m] + 1, design.max_seeds)


def simulate(
    effects: Sequence[float],
    noise: str,
    comparisons: int,
    seed: int = 0,
    design: Design = DESIGN,
    rules: dict[str, Callable] | None = None,
) -> dict:
    """Simulate `comparisons` runs of the loop with one claim per effect, "model 0 is better than
    model j" where model j's true mean is `effects[j-1]` seed-sds above model 0's. Each rule sees the
    same seeds. Returns, per rule: rates of supported / contradicted / any-positive (familywise)
    verdicts with Clopper-Pearson 95% intervals, per-claim rates, and mean seeds per model."""
    rules = rules or {"sequential": decide, "naive": naive_decide, "fixed": fixed_decide}
    means = [0.0, *effects]
    claims = [(0, j) for j in range(1, len(means))]
    null = [e == 0 for e in effects]
    rng = np.random.default_rng(seed)
    verdicts = {name: np.empty((comparisons, len(claims)), dtype=object) for name in rules}
    seeds_used = {name: np.zeros((comparisons, len(means))) for name in rules}
    for r in range(comparisons):
        draws = seed_noise(noise, rng, len(means) * design.max_seeds).reshape(len(means), design.max_seeds)
        for name, rule in rules.items():
            v, s = run_loop(means, claims, draws, design, rule)
            verdicts[name][r], seeds_used[name][r] = v, s
    out = {"effects": list(effects), "noise": noise, "comparisons": comparisons}
    true = ~np.array(null)
    for name in rules:
        v = verdicts[name]
        entry = {
            "supported_per_claim": [float(x) for x in (v == "supported").mean(axis=0)],
            "contradicted_per_claim": [float(x) for x in (v == "contradicted").mean(axis=0)],
            "mean_seeds_per_model": float(seeds_used[name].mean()),
        }
        if any(null):
            positive = np.isin(v[:, np.array(null)], ("supported", "contradicted"))
            entry["false_positive_familywise"] = _rate(positive.any(axis=1))
        if true.any():
            entry["power_per_true_claim"] = float((v[:, true] == "supported").mean())
            entry["all_true_claims_supported"] = float((v[:, true] == "supported").all(axis=1).mean())
        out[name] = entry
    return out


def _rate(hits: np.ndarray) -> dict:
    """Share of comparisons with a hit, with its Clopper-Pearson 95% interval."""
    k, n = int(hits.sum()), len(hits)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return {"rate": k / n, "count": k, "low": float(ci.low), "high": float(ci.high)}


def null_rate_batched(noise: str, paths: int, seed: int = 0, design: Design = DESIGN) -> dict:
    """The one-claim null false-positive rate to a tighter interval: with a single claim the loop
    stops at the first look whose Welch p is within that look's level, so the rate is the share of
    seeded paths crossing at any look; Welch's test runs batched over paths (`axis=1`)."""
    rng = np.random.default_rng(seed)
    a = seed_noise(noise, rng, paths * design.max_seeds).reshape(paths, design.max_seeds)
    b = seed_noise(noise, rng, paths * design.max_seeds).reshape(paths, design.max_seeds)
    p = np.stack([stats.ttest_ind(a[:, :n], b[:, :n], axis=1, equal_var=False).pvalue for n in design.looks], axis=1)
    sequential = (p <= np.array(design.levels())).any(axis=1)
    return {
        "paths": paths,
        "sequential": _rate(sequential),
        "naive": _rate((p <= design.alpha).any(axis=1)),
        "fixed": _rate(p[:, -1] <= design.alpha),
        "per_look_rejection_over_level": [
            float(x) for x in (p <= np.array(design.levels())).mean(axis=0) / np.array(design.levels())
        ],
    }


SCENARIOS = {
    "one_claim_null_normal": ((0.0,), "normal"),
    "one_claim_null_t3": ((0.0,), "t3"),
    "one_claim_effect_1.0_normal": ((1.0,), "normal"),
    "one_claim_effect_1.5_normal": ((1.5,), "normal"),
    "one_claim_effect_2.0_normal": ((2.0,), "normal"),
    "one_claim_effect_1.5_t3": ((1.5,), "t3"),
    "four_claims_null_normal": ((0.0, 0.0, 0.0, 0.0), "normal"),
    "four_claims_null_t3": ((0.0, 0.0, 0.0, 0.0), "t3"),
    "four_claims_effect_1.5_normal": ((1.5, 1.5, 1.5, 1.5), "normal"),
    "four_claims_two_null_normal": ((1.5, 1.5, 0.0, 0.0), "normal"),
}


def main() -> None:
    from result_file import machine, write

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comparisons", type=int, default=10000, help="per one-claim null scenario")
    parser.add_argument("--power-comparisons", type=int, default=4000, help="per one-claim effect scenario")
    parser.add_argument("--four-claim-comparisons", type=int, default=2000, help="per four-claim scenario")
    parser.add_argument("--batched-paths", type=int, default=400_000, help="one-claim null, batched check")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = machine(
        design={"first": DESIGN.first, "max_seeds": DESIGN.max_seeds, "alpha": DESIGN.alpha},
        levels={f"alpha/{m}": list(DESIGN.levels(DESIGN.alpha / m)) for m in (1, 2, 3, 4)},
    )
    for i, (name, (effects, noise)) in enumerate(SCENARIOS.items()):
        if len(effects) > 1:
            n = args.four_claim_comparisons
        else:
            n = args.comparisons if effects == (0.0,) else args.power_comparisons
        start = time.perf_counter()
        result[name] = simulate(effects, noise, n, seed=args.seed + i)
        result[name]["seconds"] = round(time.perf_counter() - start, 1)
        print(_line(name, result[name]), flush=True)
    for i, noise in enumerate(("normal", "t3")):
        start = time.perf_counter()
        batched = null_rate_batched(noise, args.batched_paths, seed=args.seed + 100 + i)
        batched["seconds"] = round(time.perf_counter() - start, 1)
        result[f"one_claim_null_{noise}_batched"] = batched
        print(
            f"one_claim_null_{noise}_batched (paths={batched['paths']}): "
            + "; ".join(
                f"{rule} FP {batched[rule]['rate']:.4f} [{batched[rule]['low']:.4f}, {batched[rule]['high']:.4f}]"
                for rule in ("sequential", "naive", "fixed")
            ),
            flush=True,
        )
    write(result, RESULT)


def _line(name: str, r: dict) -> str:
    parts = [f"{name} (n={r['comparisons']}, {r['seconds']}s):"]
    for rule in ("sequential", "naive", "fixed"):
        e = r[rule]
        if "false_positive_familywise" in e:
            fp = e["false_positive_familywise"]
            parts.append(f"{rule} FP {fp['rate']:.4f} [{fp['low']:.4f}, {fp['high']:.4f}]")
        if "power_per_true_claim" in e:
            parts.append(f"{rule} power {e['power_per_true_claim']:.3f}")
        parts.append(f"seeds {e['mean_seeds_per_model']:.2f};")
    return " ".join(parts)


if __name__ == "__main__":
    main()
