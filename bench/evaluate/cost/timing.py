"""Cost of a generator: sampling speed, latency, FLOPs and peak memory.

FLOPs come from `module.analytic_flops(kind)` when it returns a number, else from
`torch.utils.flop_counter.FlopCounterMode` (taught the CPU attention kernels below). The counter
sees no FLOPs in `nn.LSTM` (and any op it has no formula for), so a count of 0 is recorded as
null with the reason, never as 0.
"""

from __future__ import annotations

import fcntl
import os
import resource
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

from bench.evaluate.scored_sampling import at_temperature_one
from bench.models.base import labels_for

_PROBE = 4  # images per FLOP probe
REPEATS = 3  # timed draws per measurement at least (the STATISTIC of their times is recorded) ...
MIN_TIMED_S, MAX_REPEATS = 0.5, 25  # ... or more, up to MAX_REPEATS, until MIN_TIMED_S seconds are timed ...
MAX_TIMED_S = 10.0  # ... but no repeat starts once this many seconds are timed (a slow sampler gets fewer)
TIMED_BATCHES = 2  # sampling batches (`module.sample_batch_size`) per timed draw, at most n images
STATISTIC, STATISTIC_NAME = statistics.median, "median"  # of the repeats' times: robust to one slow draw
#: The file in a sweep folder that serialises the timing passes of that sweep's jobs.
TIMING_LOCK = ".timing.lock"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device).manual_seed(seed)


#: `timing.measurement.pass` of a record whose sampling speed is measured after the sweep
#: (`bench.pipeline.timing_pass`), so that no other job of the sweep runs while it is timed.
DEFERRED = "deferred"


def images_per_repeat(module, n: int) -> int:
    """Images in one timed draw: `TIMED_BATCHES` of the module's sampling batches, at most `n`, so
    a timed draw is made of chunks of the shapes the scored draw has drawn already."""
    batch = int(getattr(module, "sample_batch_size", 0) or n)
    return max(1, min(n, TIMED_BATCHES * batch))


def timed_sample(
    module,
    n: int,
    seed: int,
    repeats: int = REPEATS,
    lock_path: Path | None = None,
    labels: torch.Tensor | None = None,
    defer: bool = False,
) -> tuple[torch.Tensor, dict]:
    """Draw the `n` scored samples with `seed` (temperature 1, no top-k) and time sampling.

    Returns uint8 `[n, C, H, W]` and `{sample_images_per_s, latency_ms_per_image, measurement}`.
    The scored draw is made once and not timed: it is the warm-up (kernels, caches, allocations;
    at least one full sampling batch). Speed is `images_per_repeat(module, n)` over the median time
    of timed draws of that many images with other seeds (`_repeats`: at least `repeats`, more for
    a fast sampler, fewer once `MAX_TIMED_S` is timed), so the scored samples do not depend on
    timing settings and timing costs a few sampling batches, not N images; latency is the median
    of `repeats` single-image draws. With `lock_path`, the whole timing pass holds an exclusive
    lock on that file, so no two jobs of a sweep (which share the folder) time at once. A
    conditional model is given `labels` (int64 `[n]`) for every draw (the first ones for the
    smaller draws); an unconditional one is called without them. With `defer` (a parallel sweep,
    whose other jobs would still be training), only the scored draw is made here; the speed
    fields stay null until the sweep's timing pass.
    """
    device = module.device

    def draw(count: int, draw_seed: int) -> torch.Tensor:
        generator = _generator(device, draw_seed)
        if labels is None:
            return module.sample(count, generator=generator)
        return module.sample(count, generator=generator, labels=labels[:count])

    if defer:
        with at_temperature_one(module):
            samples = draw(n, seed)
        # `images_per_repeat` stands for N until the timing pass replaces the measurement
        return samples, {
            "sample_images_per_s": None,
            "sample_images_per_cpu_s": None,
            "latency_ms_per_image": None,
            "measurement": {"pass": DEFERRED, "scored_images": n, "images_per_repeat": n},
        }
    per_repeat = images_per_repeat(module, n)
    with _exclusive(lock_path) as waited, at_temperature_one(module):
        samples, scored_s = _timed(lambda: draw(n, seed), device)
        times, cpu_times = _repeats(lambda i: draw(per_repeat, seed + 1 + i), repeats, device)
        latencies = [_timed(lambda i=i: draw(1, seed + MAX_REPEATS + 1 + i), device)[1] for i in range(repeats)]
    measurement = {
        "pass": "in the job",
        "warmup": "the scored draw",
        "warmup_draws": 1,
        "warmup_images": n,
        "scored_images": n,
        "scored_draw_s": scored_s,
        "repeats": len(times),
        "statistic": STATISTIC_NAME,
        "images_per_repeat": per_repeat,
        "timed_s": sum(times),
        "max_timed_s": MAX_TIMED_S,
        "exclusive_lock": str(lock_path) if lock_path else None,
        "lock_wait_s": waited,
    }
    # CPU seconds of this process: on a shared CPU, unlike wall time, not stretched by other jobs
    return samples, {
        "sample_images_per_s": per_repeat / max(STATISTIC(times), 1e-9),
        "sample_images_per_cpu_s": per_repeat / max(STATISTIC(cpu_times), 1e-9),
        "latency_ms_per_image": 1000.0 * STATISTIC(latencies),
        "measurement": measurement,
    }


def _repeats(draw: Callable[[int], torch.Tensor], repeats: int, device: torch.device) -> tuple[list, list]:
    """Wall and CPU seconds of timed draws `draw(0)`, `draw(1)`, ...: at least `repeats`, or more
    until `MIN_TIMED_S` is timed (a draw of a few ms is mostly scheduler noise), at most
    `MAX_REPEATS`; none starts once `MAX_TIMED_S` is timed."""
    times: list[float] = []
    cpu_times: list[float] = []
    while not _timed_enough(times, repeats):
        cpu_start = time.process_time()
        times.append(_timed(lambda: draw(len(times)), device)[1])
        cpu_times.append(time.process_time() - cpu_start)
    return times, cpu_times


def _timed_enough(times: list[float], repeats: int) -> bool:
    timed = sum(times)
    if len(times) >= MAX_REPEATS or (times and timed >= MAX_TIMED_S):
        return True
    return len(times) >= repeats and timed >= MIN_TIMED_S


def _timed(fn: Callable[[], torch.Tensor], device: torch.device) -> tuple[torch.Tensor, float]:
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - start


@contextmanager
def _exclusive(lock_path: Path | None) -> Iterator[float]:
    """Hold an exclusive `flock` on `lock_path` (None: no lock); yields the seconds waited for it."""
    if lock_path is None:
        yield 0.0
        return
    Path(lock_path).parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file closes, or when the process dies
        try:
            yield time.perf_counter() - start
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _cpu_attention_formulas() -> None:
    """Teach the FLOP counter the CPU kernels of `scaled_dot_product_attention` (it has formulas for
    the CUDA ones only, so a GPT's attention counted 0 on CPU). Causal attention is counted as
    full attention, as the counter does for CUDA kernels."""
    aten = torch.ops.aten
    forward = aten._scaled_dot_product_flash_attention_for_cpu
    backward = aten._scaled_dot_product_flash_attention_for_cpu_backward
    if forward in flop_counter.flop_registry:
        return

    @flop_counter.register_flop_formula(forward)
    def _forward(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_flop_count(query, key, value)

    @flop_counter.register_flop_formula(backward)
    def _backward(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_backward_flop_count(grad_out, query, key, value)


_cpu_attention_formulas()


def _count(fn: Callable[[], object]) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def flops(module, kind: str, train_images: torch.Tensor | None = None) -> tuple[float | None, str | None]:
    """FLOPs per generated ('sample') or training ('train') image, with a reason when unknown."""
    analytic = module.analytic_flops(kind)
    if analytic is not None:
        return float(analytic), "analytic"
    device = module.device
    was_training = module.training
    module.eval()  # no dropout noise, no batch-norm statistics updates while probing
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            if kind == "sample":
                total = _count(lambda: module.sample(_PROBE, generator=_generator(device, 0)))
            else:
                if train_images is None or len(train_images) == 0:
                    return None, "no training images to probe"
                x = train_images[:_PROBE].to(device)
                # a conditional model trains on labelled batches (without labels its loss would
                # score the marginal: one pass per class)
                labels = labels_for(len(x), module.num_classes).to(device) if module.conditional else None

                def step():
                    loss = module.training_loss(x) if labels is None else module.training_loss(x, labels)
                    if loss.requires_grad:  # closed-form models have nothing to backpropagate
                        loss.backward()

                try:
                    total = _count(step)
                finally:
                    module.zero_grad(set_to_none=True)
                return (total / len(x), "flop_counter") if total else (None, _ZERO)
    except NotImplementedError as err:
        return None, f"not countable: {err}"
    finally:
        module.train(was_training)
    return (total / _PROBE, "flop_counter") if total else (None, _ZERO)


_ZERO = "flop counter saw 0 FLOPs (ops without a formula, e.g. nn.LSTM) and no analytic count"


class PeakMemory:
    """Peak memory of a block of this run alone, in MiB (`.mb`, with `.kind` saying what it is).

    CUDA: `torch.cuda.max_memory_allocated` after resetting the peak. CPU: `ru_maxrss` is a
    high-water mark inherited by reused worker processes, so instead a thread polls the resident
    set size and reports its peak increase over the size at the start of the block.
    """

    def __init__(self, device: torch.device, poll_s: float = 0.005):
        self.device, self.poll_s = device, poll_s
        self.mb: float | None = None
        self.kind = (
            "cuda max_memory_allocated"
            if device.type == "cuda"
            else "cpu resident-set increase over the start of the block"
        )

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._base = self._peak = _rss_bytes()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._peak = max(self._peak, _rss_bytes())

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, _rss_bytes())
            self.mb = (self._peak - self._base) / 2**20


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # no procfs (macOS): fall back to the process high-water mark
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
