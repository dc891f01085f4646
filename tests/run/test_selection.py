"""One selection rule per table (protocol v5), on validation curves these tests construct.

A scripted callback logs a chosen `val/fid` (and `val/bpd`) at each validation, so the checkpoint
each table must score is known in advance: the sample metrics come from the lowest `val/fid`,
bits/dim from the lowest `val/bpd`, for a GAN and a likelihood family alike;. Early stopping ends training after `patience` validations
without a better `val/fid`, and says so.
"""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from bench.data import ImageDataModule
from bench.evaluate.score import weights
from bench.models.build import build_model
from bench.run.fit import fit
from tests.helpers.configs import compose_config, tiny_overrides

FID = [9.0, 4.0, 6.0, 7.0, 8.0]  # best at the 2nd validation
BPD = [3.0, 2.5, 2.0, 2.2, 2.4]  # best at the 3rd


class ScriptedCurves(pl.Callback):
    """Logs `FID[i]` (and `BPD[i]`) at the i-th validation, in place of measured values."""

    def __init__(self, fid: list[float], bpd: list[float] | None):
        self.fid, self.bpd, self.calls, self.steps = fid, bpd, 0, []

    def on_validation_epoch_end(self, trainer, module):
        i = min(self.calls, len(self.fid) - 1)
        module.log("val/fid", self.fid[i])
        if self.bpd is not None:
            module.log("val/bpd", self.bpd[i])
        self.calls += 1
        self.steps.append(trainer.global_step)


def _fit(tmp_path, model: str, bpd: list[float] | None, *extra: str, fid: list[float] = FID):
    cfg = compose_config(tiny_overrides(tmp_path, f"model={model}", "budget.value=2560", *extra))
    pl.seed_everything(0, workers=True, verbose=False)
    dm = ImageDataModule(batch_size=int(cfg.model.batch_size), **cfg.dataset)
    module = build_model(cfg.model, dm.spec)
    module.validation_step = lambda batch, batch_idx: None  # the script logs val/bpd instead
    script = ScriptedCurves(fid, bpd)
    outcome = fit(module, dm, cfg, tmp_path, None, [script], False, quality_monitor="val/fid")
    return outcome, module, script


def _state(tmp_path, relative: str) -> dict:
    return torch.load(tmp_path / relative, map_location="cpu", weights_only=True)["state_dict"]


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in b)


def test_a_gan_is_scored_at_its_best_validation_fid_not_its_final_weights(tmp_path):
    outcome, module, script = _fit(tmp_path, "gan", None)
    assert script.calls >= 4, "the budget must allow validations past the best one"
    chosen = outcome.checkpoint
    assert chosen["selection"] == "best val/fid (validation)"
    assert chosen["selected_at"]["step"] == script.steps[1] and chosen["selected_at"]["value"] == FID[1]
    assert _same(module.state_dict(), _state(tmp_path, chosen["selected"]))
    assert not _same(module.state_dict(), _state(tmp_path, chosen["last"]))
    assert "likelihood" not in chosen and outcome.likelihood_state is None
    logged = [FID[min(i, len(FID) - 1)] for i in range(script.calls)]
    assert [row["val/fid"] for row in outcome.curves["validation"]] == logged


def test_a_likelihood_family_scores_samples_and_bits_per_dim_at_each_tables_own_best(tmp_path):
    outcome, module, script = _fit(tmp_path, "cnn_decoder", BPD, "model.net.hidden=8")
    quality, likelihood = outcome.checkpoint, outcome.checkpoint["likelihood"]
    assert quality["selected_at"]["step"] == script.steps[1]
    assert likelihood["selected_at"]["step"] == script.steps[2] and likelihood["selected_at"]["value"] == BPD[2]
    # each table's checkpoint names the other table's validation metric at the same step
    assert quality["selected_at"]["validation"] == {"val/fid": FID[1], "val/bpd": BPD[1]}
    assert likelihood["selected_at"]["validation"] == {"val/fid": FID[2], "val/bpd": BPD[2]}
    assert _same(module.state_dict(), _state(tmp_path, quality["selected"]))
    assert _same(outcome.likelihood_state, _state(tmp_path, likelihood["selected"]))
    own = {k: v.clone() for k, v in module.state_dict().items()}
    with weights(module, outcome.likelihood_state):  # what bits/dim are scored with
        assert _same(module.state_dict(), _state(tmp_path, likelihood["selected"]))
    assert _same(module.state_dict(), own), "the sample-quality weights come back after bits/dim"


def test_early_stopping_ends_training_after_patience_validations_without_a_better_fid(tmp_path):
    patience = 2
    outcome, _, script = _fit(
        tmp_path, "gan", None, f"trainer.early_stopping.patience={patience}", "budget.value=20000"
    )
    assert outcome.stopped_by == "early_stopping"
    assert script.calls == 2 + patience  # the best (2nd) validation, then `patience` that were worse
    assert outcome.samples_seen < 20000
    assert outcome.checkpoint["selected_at"]["step"] == script.steps[1]


def test_without_early_stopping_the_budget_ends_training(tmp_path):
    outcome, _, script = _fit(tmp_path, "gan", None, "budget.value=2560")
    assert outcome.stopped_by == "samples" and script.calls >= 4


@pytest.mark.parametrize("patience", [0, -1, "two", 1.5])
def test_a_patience_that_is_not_a_positive_count_is_one_line(patience):
    from bench.config.schema import validate
    from bench.core.errors import BenchError

    with pytest.raises(BenchError, match="trainer.early_stopping.patience"):
        validate(compose_config([f"trainer.early_stopping.patience={patience}"]))
