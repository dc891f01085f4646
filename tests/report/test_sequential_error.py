"""The sequential decision's false-positive rate, simulated with the compare loop as it runs.

Uses the simulation of `benchmarks/sequential_error.py` (which also reports power, seeds used and
the naive rule's error rate) on fewer comparisons: about a minute in all.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bench.report.sequential import decide

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "sequential_error.py"


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("sequential_error_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize(("noise", "comparisons"), [("normal", 4000), ("t3", 2000)])
def test_false_positive_rate_under_the_null_stays_within_alpha(noise, comparisons):
    """One claim, equal means, 3 to 10 seeds, the compare loop run `comparisons` times: declared
    supported or contradicted in at most alpha + 0.01 of them (upper end of the 95% Clopper-Pearson
    interval). Heavy-tailed noise makes Welch's test conservative, so it needs fewer comparisons."""
    simulation = _benchmark_module()
    design = simulation.DESIGN
    result = simulation.simulate((0.0,), noise, comparisons=comparisons, seed=101, rules={"sequential": decide})
    false_positive = result["sequential"]["false_positive_familywise"]
    assert false_positive["high"] <= design.alpha + 0.01, false_positive
    # The same rate to a tighter interval: with one claim the loop stops at the first look that
    # rejects, so it is the share of 400,000 seeded paths crossing at any look (batched Welch).
    batched = simulation.null_rate_batched(noise, paths=400_000, seed=102)
    assert batched["sequential"]["high"] <= design.alpha + 0.01, batched["sequential"]
    assert batched["naive"]["low"] > 2 * design.alpha  # why the design is needed
