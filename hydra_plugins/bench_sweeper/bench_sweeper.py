"""A sweeper that runs every job whose overrides compose and names each one that does not.

Hydra's basic sweeper composes a batch of jobs before launching it and ends the whole multirun
at the first job that does not compose, so one bad combination (e.g. a key only one model has)
would cancel the jobs after it. This one drops such a job with one `error:` line, writes nothing
for it, lists it among the jobs `bench-train -m` reports as not completed, and runs the rest.
Everything else (parameters, batching, launchers) is the basic sweeper's.

After the last batch, it times the sampling of every run of this sweep's jobs that deferred it
(a parallel sweep: `bench.pipeline.timing_pass`), one run at a time, so no timing shares the
machine with another job of the sweep; a run it cannot time makes `bench-train -m` exit non-zero.

No `from __future__ import annotations`: Hydra executes plugin modules outside `sys.modules`,
where a dataclass cannot resolve string annotations.
"""

import sys
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore


@dataclass
class BenchSweeperConf:
    _target_: str = "hydra_plugins.bench_sweeper.bench_sweeper.BenchSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="bench", node=BenchSweeperConf, provider="bench")


class BenchSweeper(BasicSweeper):
    def sweep(self, arguments):
        returns = super().sweep(arguments)
        self._timing_pass(returns)
        return returns

    def _timing_pass(self, returns) -> None:
        from bench.pipeline.sweep_jobs import note_incomplete_job  # noqa: PLC0415  (Hydra imports every plugin at start-up: bench loads when used)
        from bench.pipeline.timing_pass import time_sweep_jobs  # noqa: PLC0415  (Hydra imports every plugin at start-up: torch loads when a sweep ends)

        assert self.config is not None
        # the configs the jobs ran with: only their folders are timed (a resumed sweep's too)
        configs = [job.cfg for batch in returns for job in batch if job.cfg is not None]
        for name in time_sweep_jobs(configs, threads=int(self.config.threads)):
            note_incomplete_job(f"{name} (timing pass)")

    def get_job_batch(self) -> Sequence[Sequence[str]]:
        return [job for job in super().get_job_batch() if self._composes(job)]

    def _composes(self, overrides: Sequence[str]) -> bool:
        assert self.hydra_context is not None and self.config is not None
        try:
            self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        except Exception as err:  # Hydra's composition errors: their first line names the key
            from bench.pipeline.sweep_jobs import note_incomplete_job  # noqa: PLC0415  (Hydra imports every plugin at start-up: bench loads when used)

            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            job = " ".join(overrides)
            print(
                f"error: sweep job `{job}`: the config does not compose ({reason}); skipped, nothing written",
                file=sys.stderr,
                flush=True,
            )
            note_incomplete_job(f"{job} (does not compose)")
            return False
        return True
