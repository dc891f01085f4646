"""Numbers a seed replicates: per-run scored samples, temperature-1 scoring, the floor's draws,
an RNG that only training consumes, and configs rejected before anything trains."""

from __future__ import annotations

import math
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.config.protocol import Protocol, floor_seed, scoring_seed
from bench.config.run_folder import run_directory
from bench.config.schema import validate
from bench.core.errors import BenchError
from bench.core.schema import FEATURE_KEYS, FLOOR_KEYS, METRICS
from bench.evaluate import reference_set as reference
from bench.evaluate.cost.timing import flops, timed_sample
from bench.evaluate.floor import data_floor
from bench.evaluate.reference_set import reference_for
from bench.evaluate.score import evaluate_module
from bench.models.baselines import IndependentPixels
from bench.models.gpt import PixelGPT, PixelGPTNet
from bench.models.rnn import PixelRNN, PixelRNNNet
from bench.pipeline.train_task import train
from bench.report import aggregate, build_report
from bench.report.collect import collect
from bench.run.rng_state import RngState, capture, restore
from tests.helpers.configs import compose_config, tiny_overrides
from tests.helpers.report_records import make_run


@pytest.fixture(scope="module")
def pixels(bars) -> IndependentPixels:
    module = IndependentPixels(None, bars.spec)
    module.fit_closed_form(bars.train_images)
    return module


PROTOCOL = {"iwae_k": 4, "seed": 3, "kid_subsets": 10, "n_generated": 100, "floor_draws": 3}


def test_scoring_seed_differs_per_run_seed_and_purpose():
    seeds = {scoring_seed(1234, s) for s in range(50)} | {floor_seed(1234, d) for d in range(50)}
    assert len(seeds) == 100 and all(0 <= s < 2**63 for s in seeds)
    assert scoring_seed(1234, 0) == scoring_seed(1234, 0) != scoring_seed(1235, 0)


def test_run_seeds_draw_their_own_scored_samples(bars, pixels, tmp_path):
    a = evaluate_module(pixels, bars, PROTOCOL, None, tmp_path / "a", seed=0)
    again = evaluate_module(pixels, bars, PROTOCOL, None, tmp_path / "b", seed=0)
    other = evaluate_module(pixels, bars, PROTOCOL, None, tmp_path / "c", seed=1)
    load = lambda name: np.load(tmp_path / name / "samples.npz")["images"]  # noqa: E731
    assert np.array_equal(load("a"), load("b")) and a["metrics"]["fid"] == again["metrics"]["fid"]
    assert not np.array_equal(load("a"), load("c"))
    assert a["metrics"]["fid"] != other["metrics"]["fid"] and a["metrics"]["kid_mean"] != other["metrics"]["kid_mean"]
    assert a["protocol"]["scoring_seed"] == scoring_seed(3, 0) and a["protocol"]["n_generated"] == 100
    # every number evaluation publishes is declared once, in the schema
    declared = {m.key for m in METRICS if m.section == "metrics"}
    assert set(a["metrics"]) - {"bits_per_dim_kind"} == declared and set(FEATURE_KEYS) <= declared
    assert set(FLOOR_KEYS) <= set(a["data_floor"]) and a["data_floor"].get("memorization") is None


def test_data_floor_is_the_mean_of_independent_draws(bars):
    ref = reference_for(bars, Protocol(**PROTOCOL))
    floor = data_floor(ref, 100)
    fids = [d["fid"] for d in floor["draws"]]
    assert floor["n_draws"] == 3 and len(set(fids)) == 3  # distinct draws, not one draw repeated
    assert floor["fid"] == pytest.approx(sum(fids) / 3)
    assert ref.protocol_record()["floor_draws"] == 3


@pytest.mark.parametrize("family", ["rnn", "gpt"])
def test_scored_samples_ignore_display_temperature_and_top_k(bars, family):
    def build(**options):
        torch.manual_seed(0)
        if family == "rnn":
            return PixelRNN(PixelRNNNet(bars.spec, hidden=16, layers=1, embed_dim=8), bars.spec, **options)
        return PixelGPT(PixelGPTNet(bars.spec, d_model=16, layers=1, heads=2, dropout=0.0), bars.spec, **options)

    plain, shaped = build(), build(temperature=0.5, top_k=1)
    ours, _ = timed_sample(plain, 40, seed=7, repeats=1)
    theirs, _ = timed_sample(shaped, 40, seed=7, repeats=1)
    assert torch.equal(ours, theirs)
    assert shaped.temperature == 0.5 and shaped.top_k == 1  # display settings restored afterwards
    greedy = shaped.sample(40, generator=torch.Generator().manual_seed(7))
    assert not torch.equal(greedy, ours)  # the display settings do change what `sample` draws


def test_timing_of_a_real_sampler_repeats_under_the_sweep_lock(bars, pixels, tmp_path):
    """The statistic, warm-up and image counts are checked against scripted costs (test_timing.py)."""
    lock = tmp_path / ".timing.lock"
    _, speed = timed_sample(pixels, 50, seed=1, repeats=3, lock_path=lock)
    # a fast sampler is timed more than 3 times, until half a second is timed
    assert 3 < speed["measurement"]["repeats"] <= 25
    assert speed["measurement"]["exclusive_lock"] == str(lock) and lock.exists()
    assert min(speed["sample_images_per_s"], speed["sample_images_per_cpu_s"], speed["latency_ms_per_image"]) > 0


def test_gpt_flops_include_attention(bars):
    module = PixelGPT(PixelGPTNet(bars.spec, d_model=16, layers=1, heads=2, dropout=0.0), bars.spec, kv_cache=False)
    x = bars.train_images[:4]
    counter = FlopCounterMode(display=False)
    with counter:
        module.training_loss(x).backward()
    by_op = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    attention = sum(n for op, n in by_op.items() if "scaled_dot_product" in op)
    # forward QK^T and AV: 4 * T^2 * d_model per image (T tokens), and more for backward
    assert attention >= 4 * bars.spec.dims**2 * 16 * len(x)
    per_image, source = flops(module, "train", bars.train_images)
    assert source == "flop_counter" and per_image * len(x) == counter.get_total_flops()


def test_rng_state_survives_a_checkpoint_and_validation_leaves_it_alone():
    callback = RngState()
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    saved = callback.state_dict()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    restored = RngState()
    restored.load_state_dict(saved)
    assert restored.resumed and not callback.resumed
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]
    before = capture()
    restored.on_validation_start(None, None)
    torch.rand(10)  # what validation draws (e.g. a VAE's latent noise) ...
    restored.on_validation_end(None, None)
    after = capture()
    assert torch.equal(before["torch"], after["torch"])  # ... is not taken from training's stream
    restore(before)


def test_the_quality_curve_firing_never_changes_training(tmp_path):
    """The curve fires on wall-clock time; wherever it fires, a seeded run learns the same."""
    never = train(compose_config(tiny_overrides(tmp_path / "a", "protocol.quality_curve.every_seconds=null")))
    reference._CACHE.clear()  # as in a fresh process, where the curve's first firing loads the extractor
    always = train(compose_config(tiny_overrides(tmp_path / "b", "protocol.quality_curve.every_seconds=0.000001")))
    assert len(always["curves"]["quality"]) > 3 and "quality" not in never["curves"]
    assert never["metrics"] == always["metrics"]


def test_record_has_phase_times_and_the_resume_flag(tmp_path):
    cfg = compose_config(tiny_overrides(tmp_path))
    record = train(cfg)
    phases = record["timing"]["phases"]
    assert set(phases) == {"startup", "training", "validation", "checkpointing", "evaluation"}
    assert all(v is not None and v >= 0 for v in phases.values()) and phases["evaluation"] > 0
    assert record["resumed"] is False
    assert (run_directory(cfg).parent / ".timing.lock").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("protocol.pr_k=0", "protocol.pr_k=0: expected a positive integer"),
        ("protocol.n_generated=1", "protocol.n_generated=1: expected an integer >= 2"),
        ("protocol.quality_curve.every_seconds=-1", "protocol.quality_curve.every_seconds=-1"),
        ("+protocol.nope=1", "protocol.nope=1: expected one of the keys"),
        ("trainer.deterministic=maybe", "trainer.deterministic='maybe': expected one of True, False, warn"),
        ("+trainer.callbacks=[]", "trainer.callbacks=[]: expected set by the training code"),
        ("+trainer.bogus=1", "trainer.bogus=1: expected an argument of pytorch_lightning.Trainer"),
        ("+dataset.n_generated=100", "dataset.n_generated=100: expected protocol.n_generated instead"),
    ],
)
def test_every_group_is_validated_before_training(override, message, tmp_path):
    cfg = compose_config(tiny_overrides(tmp_path, override))
    with pytest.raises(BenchError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate(cfg)
    with pytest.raises(BenchError):
        train(cfg)
    assert not run_directory(cfg).exists()  # nothing trained, nothing written


class _SnapshotAtEpochEnd(pl.Callback):
    """At the end of one epoch (a kill -9 point), copies the run's checkpoints folder as it is then
    to `folder`, with the trainer's checkpoint as its `last.ckpt`."""

    def __init__(self, folder: Path, epoch: int):
        self.folder, self.epoch = folder, epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            shutil.copytree(Path(trainer.default_root_dir) / "checkpoints", self.folder)
            trainer.save_checkpoint(self.folder / "last.ckpt")


def test_a_run_resumed_at_an_epoch_boundary_ends_as_if_uninterrupted(tmp_path, monkeypatch):
    overrides = ["budget.value=1152", "protocol.quality_curve.every_seconds=null"]  # 3 epochs of the VAE
    snapshot = tmp_path / "killed_here"
    monkeypatch.setattr("bench.pipeline.stages.quality_curve", lambda cfg, dm: [_SnapshotAtEpochEnd(snapshot, 1)])
    cfg = compose_config(tiny_overrides(tmp_path, *overrides))
    uninterrupted = train(cfg)
    monkeypatch.undo()
    # the killed run's folder, in the same place (its best checkpoints are named by path), as the kill left it
    run_directory(cfg).rename(tmp_path / "uninterrupted")
    run_directory(cfg).mkdir(parents=True)
    shutil.copytree(snapshot, run_directory(cfg) / "checkpoints")
    resumed = train(cfg)
    assert resumed["resumed"] is True and uninterrupted["resumed"] is False
    assert resumed["training"]["optimizer_steps"] == uninterrupted["training"]["optimizer_steps"]
    assert resumed["metrics"] == uninterrupted["metrics"]


def test_report_floor_has_an_interval_and_times_floor_carries_it(tmp_path):
    for seed, fid in enumerate([10.0, 12.0, 14.0]):
        make_run(tmp_path, "gpt", seed, fid=fid, floor_draws=[4.0, 5.0, 6.0])
    make_run(tmp_path, "gpt", 0, fid=10.0, protocol_version=2)  # another protocol: its own group
    found = collect(tmp_path)
    assert len(found.groups) == 2
    runs = next(runs for key, runs in found.groups.items() if key.protocol_version == 1)
    floor = aggregate.data_floor(runs)
    assert floor["fid"].n == 3 and floor["fid"].mean == pytest.approx(5.0) and floor["fid"].half_width > 0
    rows = aggregate.model_rows(runs)
    aggregate.attach_floor_ratio(rows, floor)
    model = rows[0].summaries["fid"]
    relative = math.hypot(model.half_width / model.mean, floor["fid"].half_width / 5.0)
    assert rows[0].fid_vs_floor == pytest.approx(12.0 / 5.0)
    assert rows[0].fid_vs_floor_half_width == pytest.approx(12.0 / 5.0 * relative)
    md = build_report(tmp_path).markdown.read_text()
    assert "KID (standardized classifier features)" in md and "3 draws" in md
    assert f"2.40 ± {rows[0].fid_vs_floor_half_width:.2f}×" in md
