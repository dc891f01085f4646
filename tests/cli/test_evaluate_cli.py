"""`bench-eval` and `bench-rescore`: image folders, run folders, and clear errors on bad input."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from bench.cli.evaluate import eval_main, rescore_main
from bench.config.protocol import Protocol
from bench.core.records import read_record
from bench.evaluate.image_files import write_png_folder
from bench.evaluate.score import evaluate_samples
from tests.helpers.cli_runs import make_run, run_cli


def test_eval_images_folder_round_trips_levels(bars, tmp_path, capsys):
    write_png_folder(tmp_path / "png", bars.val_images, bars.spec.levels)
    code, out, _ = run_cli(eval_main, ["--images", str(tmp_path / "png"), "--dataset", "procedural"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["metrics"] == pytest.approx(evaluate_samples(bars.val_images, bars, None)["metrics"])
    assert result["protocol"]["n_generated"] == 64


@pytest.mark.parametrize(
    "case, expected",
    [
        ("empty", "found none"),
        ("unreadable", "expected a readable PNG"),
        ("wrong_size", "expected a 8x8 image"),
        ("too_many", "--n 500: expected 1..64"),
    ],
)
def test_eval_images_bad_input(case, expected, bars, tmp_path, capsys):
    folder = tmp_path / "png"
    folder.mkdir()
    argv = ["--images", str(folder), "--dataset", "procedural"]
    if case != "empty":
        write_png_folder(folder, bars.val_images, bars.spec.levels)
    if case == "unreadable":
        (folder / "00003.png").write_bytes(b"garbage")
    if case == "wrong_size":
        Image.new("L", (9, 8)).save(folder / "00003.png")
    if case == "too_many":
        argv += ["--n", "500"]
    code, _, err = run_cli(eval_main, argv, capsys)
    assert code == 2 and expected in err and err.count("\n") == 1


def test_eval_run_and_rescore(bars, tmp_path, capsys):
    run_dir, samples = make_run(tmp_path, bars)
    code, out, _ = run_cli(eval_main, ["--run", str(run_dir)], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["metrics"]["bits_per_dim_kind"] == "exact" and result["protocol"]["n_generated"] == 100
    code, out, _ = run_cli(rescore_main, [str(tmp_path)], capsys)
    assert code == 0 and "rescored" in out
    record = read_record(run_dir)
    assert record["metrics"]["fid"] == pytest.approx(evaluate_samples(samples, bars, None)["metrics"]["fid"])
    assert record["metrics"]["bits_per_dim"] == 1.5  # kept: samples carry no likelihood
    assert record["protocol"]["version"] == Protocol().version and record["data_floor"]["n_generated"] == 100


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("corrupt", "expected a PyTorch checkpoint"),
        ("other_family", "a checkpoint of family 'gan'"),
        ("other_shape", "weights do not fit"),
    ],
)
def test_eval_run_bad_checkpoint(damage, expected, bars, tmp_path, capsys):
    run_dir, _ = make_run(tmp_path, bars)
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    if damage == "corrupt":
        ckpt.write_bytes(b"\x00" * 100)
    elif damage == "other_family":
        torch.save({"state_dict": {}, "bench": {"family": "gan"}}, ckpt)
    else:
        torch.save({"state_dict": {"net.log_probs": torch.zeros(3)}, "bench": {"family": "independent_pixels"}}, ckpt)
    code, _, err = run_cli(eval_main, ["--run", str(run_dir)], capsys)
    assert code == 2 and expected in err and str(ckpt) in err
