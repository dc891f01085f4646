"""Resume after a kill: metrics.csv keeps every row of the whole run once, a truncated last.ckpt
is set aside (named) and the run starts over, and a diverged run is never sampled."""

from __future__ import annotations

import csv
import shutil

import pytest
import torch

from bench.config.run_folder import run_directory
from bench.core.records import RECORD_NAME
from bench.pipeline.train_task import train
from bench.run.fit import logged_steps
from bench.run.metrics_log import rows_before
from tests.helpers.configs import compose_config, tiny_overrides


def _rows(run_dir) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_metrics_csv_keeps_rows_before_the_checkpoint_and_replaces_replayed_ones(tmp_path):
    # a run stopped at half the budget stands in for a killed one: its last.ckpt and metrics.csv
    # are put where the full-budget run looks for them, plus rows the killed process logged after
    # its checkpoint (the resumed run replays those steps)
    half = compose_config(tiny_overrides(tmp_path / "half", "budget.value=512"))
    train(half)
    full = compose_config(tiny_overrides(tmp_path / "full"))
    run_dir = run_directory(full)
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(run_directory(half) / "checkpoints" / "last.ckpt", run_dir / "checkpoints" / "last.ckpt")
    resume_step = logged_steps(torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True))
    before = _rows(run_directory(half))
    assert resume_step > 0 and any(int(r["step"]) <= resume_step for r in before)
    with open(run_dir / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(before[0]))
        writer.writeheader()
        writer.writerows(before + [{**before[0], "step": str(resume_step + k), "train/loss": "999"} for k in (1, 2)])
    record = train(full)
    assert record["status"] == "completed"
    rows = _rows(run_dir)
    assert [r for r in rows if int(r["step"]) <= resume_step] == [r for r in before if int(r["step"]) <= resume_step]
    assert "999" not in {r.get("train/loss") for r in rows}
    kinds = [(int(r["step"]), "val" if r.get("val/bpd") else "train") for r in rows]
    assert kinds == sorted(kinds) and len(set(kinds)) == len(kinds)  # in order, each once
    assert max(s for s, _ in kinds) >= record["training"]["optimizer_steps"] - 1


def test_rows_kept_on_resume_are_those_the_resumed_run_will_not_log_again(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train/loss,val/bpd\n0,4,1.0,\n0,9,0.9,\n0,9,,2.0\n1,10,,1.9\n1,14,0.8,\n")
    header, rows = rows_before(str(path), 9)
    # rows at the checkpoint's own step were logged after it was saved, and are not logged again
    assert header == ["epoch", "step", "train/loss", "val/bpd"]
    assert [(r["step"], r["train/loss"], r["val/bpd"]) for r in rows] == [
        ("4", "1.0", ""),
        ("9", "0.9", ""),
        ("9", "", "2.0"),
    ]
    assert rows_before(str(path), 0) == ([], [])


def test_a_truncated_last_checkpoint_is_set_aside_and_the_run_starts_over(tmp_path, capsys):
    cfg = compose_config(tiny_overrides(tmp_path))
    first = train(cfg)
    run_dir = run_directory(cfg)
    last = run_dir / "checkpoints" / "last.ckpt"
    whole = last.read_bytes()
    (run_dir / RECORD_NAME).unlink()
    last.write_bytes(whole[: len(whole) // 3])
    capsys.readouterr()
    again = train(cfg)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if str(last) in line]
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "starts over" in lines[0]
    assert (run_dir / "checkpoints" / "last.ckpt.unreadable").read_bytes() == whole[: len(whole) // 3]
    assert again["status"] == "completed" and again["training"] == {
        **again["training"],
        **{k: first["training"][k] for k in ("samples_seen", "optimizer_steps")},
    }
    torch.load(last, weights_only=True)  # a whole checkpoint again


@pytest.mark.parametrize("lr", ["1e6", "inf"])
def test_a_diverged_run_is_recorded_as_diverged_and_never_sampled(lr, tmp_path):
    cfg = compose_config(tiny_overrides(tmp_path, f"model.module.lr={lr}", "protocol.quality_curve.every_seconds=0.01"))
    record = train(cfg)
    assert record["status"] == "diverged" and record["budget"]["stopped_by"] == "diverged", record["message"]
    d = record["divergence"]
    batch = int(cfg.model.batch_size)
    for point in record["curves"]["quality"]:  # measured only while the losses were finite
        assert point["fid"] == point["fid"] and point["samples_seen"] < d["detected_at_step"] * batch
    assert d["detected_at_step"] > 0 and "detected at step" in record["message"]
    if d["last_finite_loss"] is not None:
        assert torch.isfinite(torch.tensor(d["last_finite_loss"])) and d["last_finite_step"] <= d["detected_at_step"]
    assert not (run_directory(cfg) / "samples.npz").exists()
