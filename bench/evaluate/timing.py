"""Cost of a generator: sampling speed, latency, FLOPs and peak memory.

FLOPs come from `module.analytic_flops(kind)` when it returns a number, else from
`torch.utils.flop_counter.FlopCounterMode`. The counter sees no FLOPs in `nn.LSTM` (and any op
it has no formula for), so a count of 0 is recorded as null with the reason, never as 0.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

_PROBE = 4  # images per FLOP probe


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device).manual_seed(seed)


def timed_sample(module, n: int, seed: int) -> tuple[torch.Tensor, dict[str, float]]:
    """Draw the `n` evaluated samples with `seed` after a warm-up, and time them.

    Returns uint8 `[n, C, H, W]` and `{sample_images_per_s, latency_ms_per_image}`; latency is
    the median of three single-image draws (warm-up and latency draws use other seeds, so the
    evaluated samples are the same with or without timing).
    """
    device = module.device
    module.sample(min(n, _PROBE), generator=_generator(device, seed + 1))  # warm-up: kernels, caches
    _sync(device)
    start = time.perf_counter()
    samples = module.sample(n, generator=_generator(device, seed))
    _sync(device)
    elapsed = time.perf_counter() - start
    latencies = []
    for i in range(3):
        t0 = time.perf_counter()
        module.sample(1, generator=_generator(device, seed + 2 + i))
        _sync(device)
        latencies.append(time.perf_counter() - t0)
    return samples, {"sample_images_per_s": n / max(elapsed, 1e-9),
                     "latency_ms_per_image": 1000.0 * statistics.median(latencies)}


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

                def step():
                    loss = module.training_loss(x)
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
        self.kind = ("cuda max_memory_allocated" if device.type == "cuda"
                     else "cpu resident-set increase over the start of the block")

    def __enter__(self) -> "PeakMemory":
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
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
