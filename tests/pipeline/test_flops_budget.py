"""A `flops` budget: training FLOPs counted before training, the same FLOP model the records use."""

import pytest

from bench.pipeline import stages
from bench.pipeline.train_task import train
from bench.run.budget import TrainingBudget
from tests.helpers.configs import compose_config, tiny_overrides


def test_flops_budget_stops_at_the_first_batch_that_reaches_it_and_records_flops_everywhere(tmp_path):
    cfg = compose_config(
        tiny_overrides(
            tmp_path,
            "budget=flops",
            "budget.value=2e10",
            "protocol.quality_curve.every_seconds=0.5",
            "protocol.quality_curve.n_samples=50",
        )
    )
    record = train(cfg)
    assert record["status"] == "completed", record["message"]
    training, per_image = record["training"], record["training"]["flops_per_train_image"]
    # counted before training with the FLOP model the evaluation counts with
    assert per_image == record["timing"]["flops_per_train_sample"] > 0
    assert record["budget"] == {"kind": "flops", "value": 2e10, "stopped_by": "flops"}
    assert training["train_flops"] == training["samples_seen"] * per_image
    batch = int(cfg.model.batch_size)
    assert (training["samples_seen"] - batch) * per_image < 2e10 <= training["train_flops"]
    curve = record["curves"]["quality"]
    assert curve and all(p["train_flops"] == p["samples_seen"] * per_image for p in curve)
    assert curve[-1]["train_flops"] == training["train_flops"]
    selected = record["checkpoint"]["selected_at"]
    assert selected["train_flops"] == selected["samples_seen"] * per_image


def test_a_model_whose_training_flops_are_unknown_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(stages, "flops", lambda *args: (None, "flop counter saw 0 FLOPs"))
    record = train(compose_config(tiny_overrides(tmp_path, "budget=flops", "budget.value=1e10")))
    assert record["status"] == "failed"
    assert record["message"].startswith("budget.kind=flops: the FLOPs per training image of model cnn_decoder")
    assert "flop counter saw 0 FLOPs" in record["message"] and "\n" not in record["message"]
    assert record["training"] == {}  # refused before training


def test_flops_budget_fraction_and_lr_schedule_follow_flops_not_images():
    budget = TrainingBudget("flops", 1000.0, flops_per_image=10.0)
    budget.samples_seen = 25
    assert budget.train_flops == 250.0 and budget.fraction == pytest.approx(0.25)
    budget.samples_seen = 200
    assert budget.fraction == 1.0
    assert TrainingBudget("samples", 1000.0, flops_per_image=10.0).train_flops == 0.0
    assert TrainingBudget("time", 10.0).train_flops is None
    with pytest.raises(ValueError):
        TrainingBudget("flops", 1000.0, flops_per_image=None)
