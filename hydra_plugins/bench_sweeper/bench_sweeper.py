"""A sweeper that runs every job whose overrides compose and names each one that does not.

Hydra's basic sweeper composes a batch of jobs before launching it and ends the whole multirun
at the first job that does not compose, so one bad combination (e.g. a key only one model has)
would cancel the jobs after it. This one drops such a job with one `error:` line, writes nothing
for it, lists it among the jobs `bench-train -m` reports as not completed, and runs the rest.
Everything else (parameters, batching, launchers) is the basic sweeper's.

After the last batch, it times the sampling of every run whose job deferred it (a parallel
sweep: `bench.evaluate.timing_pass`), one run at a time, so no timing shares the machine with
another job of the sweep.

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
        self._timing_pass()
        return returns

    def _timing_pass(self) -> None:
        from pathlib import Path

        from bench.evaluate.timing_pass import is_pending, sweep_folder_runs, time_runs
        from bench.record import read_record

        assert self.config is not None
        folder = Path(str(self.config.results_dir)) / str(self.config.sweep)
        pending = [run for run in sweep_folder_runs(folder) if is_pending(read_record(run))]
        if pending:
            print(f"timing pass: sampling speed of {len(pending)} run(s), one at a time", flush=True)
            time_runs(pending, threads=int(self.config.threads))

    def get_job_batch(self) -> Sequence[Sequence[str]]:
        return [job for job in super().get_job_batch() if self._composes(job)]

    def _composes(self, overrides: Sequence[str]) -> bool:
        assert self.hydra_context is not None and self.config is not None
        try:
            self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        except Exception as err:  # Hydra's composition errors: their first line names the key
            from bench.train import note_incomplete_job

            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            job = " ".join(overrides)
            print(f"error: sweep job `{job}`: the config does not compose ({reason}); skipped, nothing written",
                  file=sys.stderr, flush=True)
            note_incomplete_job(f"{job} (does not compose)")
            return False
        return True
