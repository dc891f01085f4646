"""Sampling speed as `timed_sample` measures it, checked against a sampler whose cost is scripted.

The sampler advances a fake clock (`timing.time` is replaced by it) instead of working, so each
expected speed is exact arithmetic on the script: the statistic, the warm-up and the number of
images drawn are observed, not read back from the labels the code writes.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import pytest
import torch
from torch import nn

from bench.evaluate.cost import timing
from bench.models.base import GenerativeModule
from bench.testing.checks import tiny_spec


class FakeClock:
    """Stands in for the `time` module inside `bench.evaluate.cost.timing`: wall and CPU time are one
    counter that only the sampler advances."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def process_time(self) -> float:
        return self.now


class ScriptedSampler(GenerativeModule):
    """Draws random levels; each chunk `generate` draws costs `cost(call, size, new_shape)` fake
    seconds, where `call` counts `sample` calls from 0 and `new_shape` is whether no chunk of
    that size was drawn before (a cold kernel, cache or allocation)."""

    family = "scripted"

    def __init__(self, clock: FakeClock, cost: Callable[[int, int, bool], float], batch: int):
        spec = tiny_spec()
        super().__init__(nn.Linear(1, 1), spec, sample_batch_size=batch)
        self.clock, self.cost = clock, cost
        self.requested: list[int] = []  # images asked of `sample`, one entry per call
        self.chunks: list[int] = []

    def sample(self, n, generator=None, labels=None):
        self.requested.append(n)
        return super().sample(n, generator, labels)

    def generate(self, n, generator=None, labels=None):
        self.clock.now += self.cost(len(self.requested) - 1, n, n not in self.chunks)
        self.chunks.append(n)
        return torch.randint(0, self.spec.levels, (n, *self.spec.shape), generator=generator)


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(timing, "time", fake)
    return fake


def test_speed_is_images_per_repeat_over_the_median_repeat(clock):
    repeat_s = [0.5, 0.1, 0.2]  # median 0.2; min 0.1, mean 0.267, first 0.5 give other speeds
    latency_s = 0.004

    def cost(call, size, new_shape):
        if call == 0:
            return 0.0  # the scored draw: never timed
        return latency_s if size == 1 else repeat_s[call - 1] / 2  # a repeat is two chunks

    model = ScriptedSampler(clock, cost, batch=2)
    _, speed = timing.timed_sample(model, 10, seed=0)
    per_repeat = speed["measurement"]["images_per_repeat"]
    assert per_repeat == 4 and speed["measurement"]["repeats"] == 3
    assert speed["sample_images_per_s"] == pytest.approx(per_repeat / statistics.median(repeat_s))
    assert speed["sample_images_per_cpu_s"] == pytest.approx(per_repeat / statistics.median(repeat_s))
    assert speed["latency_ms_per_image"] == pytest.approx(1000 * latency_s)


@pytest.mark.parametrize("n, batch", [(10, 2), (5, 2), (3, 8)])
def test_timed_draws_are_warm_after_the_scored_draw_of_a_full_batch(clock, n, batch):
    """A chunk of a size never drawn before costs 12 s (past `MAX_TIMED_S`: a cold timed draw
    would end the timing alone); warm chunks 0.3 s."""
    model = ScriptedSampler(clock, lambda call, size, new_shape: 12.0 if new_shape else 0.3, batch)
    _, speed = timing.timed_sample(model, n, seed=0)
    per_repeat = speed["measurement"]["images_per_repeat"]
    chunks_per_repeat = -(-per_repeat // batch)
    assert speed["sample_images_per_s"] == pytest.approx(per_repeat / (0.3 * chunks_per_repeat))
    assert model.requested[0] == n and max(model.chunks[:1]) == min(n, batch)  # warm-up: one full batch first
    assert speed["measurement"]["warmup_images"] >= min(n, batch)


def test_timing_draws_n_images_once_and_a_few_batches_besides(clock):
    n, batch = 1000, 64
    model = ScriptedSampler(clock, lambda call, size, new_shape: 0.1, batch)
    samples, speed = timing.timed_sample(model, n, seed=5)
    m = speed["measurement"]
    assert m["images_per_repeat"] == 2 * batch and m["repeats"] == timing.REPEATS
    assert model.requested.count(n) == 1 and model.requested[0] == n  # the scored draw, first and once
    assert sum(model.requested) == n + m["repeats"] * m["images_per_repeat"] + timing.REPEATS  # + latency draws
    assert torch.equal(samples, model.sample(n, torch.Generator().manual_seed(5)))


@pytest.mark.parametrize("chunk_s, repeats", [(15.0, 1), (3.0, 2), (0.1, 3), (0.001, timing.MAX_REPEATS)])
def test_repeats_stop_at_the_time_floor_the_cap_or_the_most_repeats(clock, chunk_s, repeats):
    """A repeat is two chunks: 30 s (one repeat passes the 10 s cap), 6 s (two), 0.2 s (three
    reach the 0.5 s floor), 2 ms (the floor is never reached: the most repeats)."""
    model = ScriptedSampler(clock, lambda call, size, new_shape: chunk_s, batch=4)
    _, speed = timing.timed_sample(model, 40, seed=0)
    assert speed["measurement"]["repeats"] == repeats
    assert speed["sample_images_per_s"] == pytest.approx(8 / (2 * chunk_s))
