"""Progress modes: one clean line per job event in sweeps, the bar only for a lone terminal run."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from bench.core.errors import ConfigError
from bench.run.progress import LineProgress, make_progress, resolve_mode


class _TinyModule(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Budget(pl.Callback):
    """Stands in for the training budget: exposes `trainer.bench_budget` like the real one."""

    def __init__(self, total: int):
        self.kind, self.value, self.samples_seen, self.fraction = "samples", total, 0, 0.0

    def on_train_start(self, trainer, pl_module):
        trainer.bench_budget = self

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.samples_seen += len(batch[0])
        self.fraction = min(self.samples_seen / self.value, 1.0)


def _fit(callbacks, enable_bar: bool, steps: int = 8) -> None:
    data = torch.utils.data.TensorDataset(torch.randn(4 * steps, 2))
    trainer = pl.Trainer(
        max_steps=steps,
        callbacks=[_Budget(4 * steps), *callbacks],
        enable_progress_bar=enable_bar,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(_TinyModule(), torch.utils.data.DataLoader(data, batch_size=4))


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_mode_prints_start_quarters_and_end():
    stream = io.StringIO()
    callbacks, enable_bar = make_progress(mode="lines", run_name="job-a", stream=stream)
    assert enable_bar is False and isinstance(callbacks[0], LineProgress)
    _fit(callbacks, enable_bar)
    lines = stream.getvalue().splitlines()
    assert all(line.startswith("[job-a] ") for line in lines)
    events = [line.split("] ", 1)[1].split(" ")[0] for line in lines]
    assert events == ["started", "25%", "50%", "75%", "finished"]
    assert "budget samples 32" in lines[0] and "train/loss" in lines[-1]


def test_auto_mode_depends_on_terminal_and_parallel_jobs(monkeypatch):
    assert resolve_mode("auto", io.StringIO()) == "lines"
    assert resolve_mode("auto", _Tty()) == "bar"
    monkeypatch.setattr("bench.run.progress._parallel_jobs", lambda: 2)
    assert resolve_mode("auto", _Tty()) == "lines"
    assert make_progress("bar") == ([], True)
    assert make_progress("none") == ([], False)
    with pytest.raises(ConfigError, match="progress"):
        make_progress("fancy")


def test_parallel_jobs_read_from_hydra_launcher(monkeypatch):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from bench.run.progress import _parallel_jobs

    assert _parallel_jobs() == 1  # no Hydra context
    fake = SimpleNamespace(mode=RunMode.MULTIRUN, launcher={"n_jobs": 2})
    monkeypatch.setattr(HydraConfig, "initialized", staticmethod(lambda: True))
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: fake))
    assert _parallel_jobs() == 2
    fake.launcher = {}
    assert _parallel_jobs() == 1
