"""Numbers that training publishes: which checkpoint is scored, the schedules it follows, how a
run that goes wrong is recorded, and what the budget counts.

Each test is phrased as a behaviour a one-line slip would break (`benchmarks/mutants.py` lists
such slips and checks that this suite catches them).
"""

from __future__ import annotations

import csv
import json
import math
import signal
import time

import pytest
import pytorch_lightning as pl
import torch

from bench.config.run_folder import run_directory
from bench.data import ImageDataModule
from bench.models.base import GenerativeModule
from bench.models.build import build_model
from bench.pipeline.train_task import train
from bench.run.fit import fit
from tests.helpers.configs import compose_config, tiny_overrides

CURVE_OFF = "protocol.quality_curve.every_seconds=null"
#: validation bits/dim are lowest at the fourth of six epochs, and higher at the last (seed 0):
#: 161, 15.5, 8.62, 3.34, 11.7, 5.24 (at lr 0.02 the last epoch is now the best: the tests would mean nothing)
OVERFITS = ("budget.value=2304", "model.module.lr=0.03")


def _logged(run_dir, column: str) -> list[float]:
    with open(run_dir / "metrics.csv", newline="") as fh:
        return [float(row[column]) for row in csv.DictReader(fh) if row.get(column)]


def test_each_table_is_scored_at_its_own_lowest_validation_metric(tmp_path):
    cfg = compose_config(tiny_overrides(tmp_path, CURVE_OFF, *OVERFITS))
    record = train(cfg)
    logged = _logged(run_directory(cfg), "val/bpd")
    logged_fid = _logged(run_directory(cfg), "val/fid")
    assert record["status"] == "completed", record["message"]
    assert len(logged) >= 3 and logged[-1] > min(logged), (
        "the run must get worse at the end for this test to mean anything"
    )
    likelihood = record["checkpoint"]["likelihood"]
    assert likelihood["selected_at"]["value"] == pytest.approx(min(logged), rel=1e-6)
    assert likelihood["selection"].startswith("best val/bpd")
    assert record["checkpoint"]["selected_at"]["value"] == pytest.approx(min(logged_fid), rel=1e-6)
    assert record["checkpoint"]["selection"].startswith("best val/fid")
    assert [row["val/bpd"] for row in record["curves"]["validation"]] == pytest.approx(logged, rel=1e-6)


def test_without_a_quality_monitor_samples_come_from_the_final_weights_and_bits_per_dim_from_the_best(tmp_path):
    cfg = compose_config(tiny_overrides(tmp_path, CURVE_OFF, *OVERFITS))
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    dm = ImageDataModule(batch_size=int(cfg.model.batch_size), **cfg.dataset)
    module = build_model(cfg.model, dm.spec)
    outcome = fit(module, dm, cfg, tmp_path, None, [], False)

    def weights(path):
        return torch.load(tmp_path / path, map_location="cpu", weights_only=True)["state_dict"]

    best, last, scored = (
        weights(outcome.checkpoint["likelihood"]["selected"]),
        weights(outcome.checkpoint["last"]),
        module.state_dict(),
    )
    assert outcome.checkpoint["selected"] == outcome.checkpoint["last"] == "checkpoints/last.ckpt"
    assert all(torch.equal(scored[k], last[k]) for k in last)
    assert all(torch.equal(outcome.likelihood_state[k], best[k]) for k in best)
    assert not all(torch.equal(best[k], last[k]) for k in last)


# ---- schedules ------------------------------------------------------------------------------


def _module(**kwargs) -> GenerativeModule:
    spec = ImageDataModule("procedural", val_size=64, test_size=64).spec
    return build_model(
        {
            "family": "cnn_decoder",
            "module": kwargs,
            "net": {"_target_": "bench.models.cnn_decoder.ConvVAENet", "latent_dim": 4, "hidden": 8},
        },
        spec,
    )


def test_learning_rate_warms_up_linearly_then_decays_by_cosine_to_two_percent():
    module = _module(lr_schedule="cosine", warmup_fraction=0.2)
    f = module.lr_factor
    assert f(0.1) == pytest.approx(0.5) and f(0.05) == pytest.approx(0.25)
    assert f(0.2) == pytest.approx(1.0)
    assert f(0.6) == pytest.approx(0.02 + 0.98 * 0.5)  # half-way through the decay
    assert f(1.0) == pytest.approx(0.02)
    grid = [i / 200 for i in range(201)]
    values = [f(x) for x in grid]
    warm = [v for x, v in zip(grid, values) if x <= 0.2]
    decay = [v for x, v in zip(grid, values) if x >= 0.2]
    assert all(a < b for a, b in zip(warm[1:], warm[2:])) and all(a > b for a, b in zip(decay, decay[1:]))
    assert 0 < values[0] <= 1e-3  # never exactly zero: the first steps still move


def test_a_constant_schedule_is_constant_after_its_warm_up():
    flat = _module(lr_schedule="constant")
    assert {flat.lr_factor(x) for x in (0.0, 0.3, 0.99, 1.0)} == {1.0}
    warmed = _module(lr_schedule="constant", warmup_fraction=0.5)
    assert warmed.lr_factor(0.25) == pytest.approx(0.5) and warmed.lr_factor(0.75) == 1.0


class ScheduleRecorder(pl.Callback):
    """Per training batch: the share of the samples budget seen before it, the learning rate the
    optimizer steps with, and the VAE's KL weight measured from its losses (see `kl_weight`)."""

    def __init__(self, budget: int):
        self.budget, self.seen, self.rows = budget, 0, []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.rows.append({"fraction": self.seen / self.budget, "beta": kl_weight(module, batch[0])})
        self.seen += len(batch[0])

    def on_before_optimizer_step(self, trainer, module, optimizer):
        self.rows[-1]["lr"] = optimizer.param_groups[0]["lr"]


@torch.no_grad()
def kl_weight(module, x: torch.Tensor) -> float:
    """The weight of the KL term in the VAE's training loss right now, from three losses on the same noise:
    with the KL at full weight (the ELBO), with no warm-up progress (weight 0), and as trained."""

    def seeded(fn):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return float(fn(x).mean())

    elbo = seeded(module.nll_bits_per_dim)
    warmup = module.kl_warmup_fraction
    module.kl_warmup_fraction = math.inf  # no progress through the warm-up: the KL weight is 0
    reconstruction = seeded(module.training_loss)
    module.kl_warmup_fraction = warmup
    return (seeded(module.training_loss) - reconstruction) / (elbo - reconstruction)


def test_training_follows_the_learning_rate_and_kl_warm_up_schedules(tmp_path):
    cfg = compose_config(
        tiny_overrides(
            tmp_path,
            CURVE_OFF,
            "++model.module.lr_schedule=cosine",
            "++model.module.warmup_fraction=0.25",
            "++model.module.kl_warmup_fraction=0.5",
        )
    )
    pl.seed_everything(0, verbose=False)
    dm = ImageDataModule(batch_size=int(cfg.model.batch_size), **cfg.dataset)
    module = build_model(cfg.model, dm.spec)
    recorder = ScheduleRecorder(int(cfg.budget.value))
    fit(module, dm, cfg, tmp_path, None, [recorder], False)
    rows = recorder.rows
    assert len(rows) == int(cfg.budget.value) // int(cfg.model.batch_size)
    base = float(cfg.model.module.lr)
    for row in rows:
        assert row["lr"] == pytest.approx(base * module.lr_factor(row["fraction"]), rel=1e-6), row
        # early on the KL is ~1e-4 bits/dim, so float32 rounding of the losses moves the weight by ~0.01
        assert row["beta"] == pytest.approx(min(1.0, row["fraction"] / 0.5), abs=0.02), row
    assert rows[0]["lr"] < 0.01 * base and max(r["lr"] for r in rows) > 0.9 * base
    assert rows[-1]["lr"] < 0.1 * base  # the cosine ends with the budget


# ---- runs that go wrong -----------------------------------------------------------------------


def test_a_run_whose_loss_turns_nan_is_recorded_as_diverged(tmp_path):
    cfg = compose_config(
        tiny_overrides(
            tmp_path, CURVE_OFF, "budget.value=2048", "model.net._target_=tests.helpers.numbers_nets.NaNVAENet"
        )
    )
    record = train(cfg)
    assert record["status"] == "diverged" and record["budget"]["stopped_by"] == "diverged"


@pytest.mark.parametrize(
    "extra",
    [("model.module.lr=1e6",), (CURVE_OFF, "model.net._target_=tests.helpers.numbers_nets.NaNVAENet")],
    ids=["lr-1e6-with-quality-curve", "nan-loss-within-16-batches"],
)
def test_any_diverging_run_is_recorded_as_diverged(tmp_path, extra):
    record = train(compose_config(tiny_overrides(tmp_path, *extra)))
    assert record["status"] == "diverged" and record["budget"]["stopped_by"] == "diverged"


def test_an_interrupted_run_is_recorded_as_interrupted_and_the_interrupt_propagates(tmp_path):
    cfg = compose_config(
        tiny_overrides(tmp_path, CURVE_OFF, "model.net._target_=tests.helpers.numbers_nets.InterruptingVAENet")
    )
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises((KeyboardInterrupt, SystemExit)):  # either way a sweep stops
            train(cfg)
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores further Ctrl+C while it shuts down
    record = json.loads((run_directory(cfg) / "result.json").read_text())
    assert record["status"] == "interrupted" and record["budget"]["stopped_by"] == "interrupted"


# ---- what the budget counts ---------------------------------------------------------------------


def test_evaluation_during_training_is_kept_out_of_the_training_time(tmp_path):
    """The net sleeps 0.2 s in every gradient-free decode: each quality-curve point (measured after
    every batch here), validation and final scoring. Training itself never sleeps."""
    pause = 0.2
    cfg = compose_config(
        tiny_overrides(
            tmp_path,
            "budget.value=512",
            "protocol.quality_curve.every_seconds=1e-6",
            "protocol.quality_curve.n_samples=16",
            "model.net._target_=tests.helpers.numbers_nets.SleepyVAENet",
            f"++model.net.pause={pause}",
            "model.net.hidden=8",
        )
    )
    started = time.perf_counter()
    record = train(cfg)
    wall = time.perf_counter() - started
    assert record["status"] == "completed", record["message"]
    points = len(record["curves"]["quality"])
    slept_in_curve = points * pause
    assert points >= 8  # one per batch
    training = record["training"]
    assert training["eval_seconds_during_training"] >= slept_in_curve
    # 8 batches of this VAE take about 0.25 s; counting the curve would add the pauses of all points but
    # the first and the last (7 of 8 here)
    assert training["train_seconds"] < 0.75 * slept_in_curve
    assert wall > training["train_seconds"] + training["eval_seconds_during_training"]


def test_validation_comes_after_every_validation_every_times_the_validation_set_in_training_images(tmp_path):
    # procedural: 384 training images (12 batches of 32 an epoch), 64 validation images;
    # validation_every=2 -> every ceil(2 * 64 / 32) = 4 batches, across epoch boundaries
    cfg = compose_config(tiny_overrides(tmp_path, CURVE_OFF, "validation_every=2", "model=rnn"))
    record = train(cfg)
    assert record["status"] == "completed", record["message"]
    with open(run_directory(cfg) / "metrics.csv", newline="") as fh:
        steps = [int(row["step"]) for row in csv.DictReader(fh) if row.get("val/bpd")]
    assert steps[:8] == [3, 7, 11, 15, 19, 23, 27, 31], steps
