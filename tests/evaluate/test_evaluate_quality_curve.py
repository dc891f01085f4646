"""QualityCurve: FID against validation at intervals of training time, its cost kept apart."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from bench.core.errors import BenchError
from bench.evaluate.quality_curve import QualityCurve
from bench.models.base import GenerativeModule


class PixelLogitsModel(GenerativeModule):
    """Independent per-pixel categorical trained by gradient: the smallest trainable generator."""

    likelihood = "exact"

    def __init__(self, spec):
        super().__init__(
            nn.ParameterDict({"logits": nn.Parameter(torch.zeros(*spec.shape, spec.levels))}), spec, lr=0.1
        )

    def nll_bits_per_dim(self, x):
        logp = self.net["logits"].log_softmax(-1).expand(len(x), *self.net["logits"].shape)
        return -logp.gather(-1, x.long().unsqueeze(-1)).flatten(1).mean(1) / math.log(2)

    def generate(self, n, generator=None):
        probs = self.net["logits"].softmax(-1).reshape(-1, self.spec.levels)
        return torch.multinomial(probs, n, replacement=True, generator=generator).t().reshape(n, *self.spec.shape)


def test_curve_counts_its_own_progress_in_a_real_fit(bars_batch_32):
    curve = QualityCurve(bars_batch_32, {"seed": 0}, every_seconds=1e-6, n_samples=40)
    trainer = pl.Trainer(
        max_steps=4,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[curve],
    )
    trainer.fit(PixelLogitsModel(bars_batch_32.spec), datamodule=bars_batch_32)
    seen = [p["samples_seen"] for p in curve.curve]
    assert seen == [32, 64, 96, 128]  # one point per batch at this interval, no extra final point
    assert all(math.isfinite(p["fid"]) for p in curve.curve)
    assert curve.curve[-1]["fid"] < curve.curve[0]["fid"] * 1.5  # the model learns, it does not blow up
    assert curve.eval_seconds > 0
    assert all(b["train_seconds"] > a["train_seconds"] for a, b in zip(curve.curve, curve.curve[1:]))


def test_curve_reads_the_training_budget_and_skips_missed_intervals(bars_batch_32):
    module = PixelLogitsModel(bars_batch_32.spec)
    curve = QualityCurve(bars_batch_32, None, every_seconds=10.0, n_samples=20)
    budget = SimpleNamespace(train_seconds=0.0, samples_seen=0, train_flops=0.0)
    trainer = SimpleNamespace(bench_budget=budget, is_global_zero=True)
    batch = (bars_batch_32.train_images[:8], bars_batch_32.train_labels[:8])
    for seconds in (3.0, 9.9, 10.0, 35.0, 36.0, 40.5):
        budget.train_seconds, budget.samples_seen = seconds, int(seconds * 100)
        budget.train_flops = budget.samples_seen * 7.0
        curve.on_train_batch_end(trainer, module, None, batch, 0)
    assert [p["train_seconds"] for p in curve.curve] == [10.0, 35.0, 40.5]
    assert [p["samples_seen"] for p in curve.curve] == [1000, 3500, 4050]
    assert [p["train_flops"] for p in curve.curve] == [7000.0, 24500.0, 28350.0]


def test_curve_settings_are_checked(bars_batch_32):
    with pytest.raises(BenchError, match="every_seconds"):
        QualityCurve(bars_batch_32, None, every_seconds=0, n_samples=20)
