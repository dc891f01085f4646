"""Bad inputs to `bench-eval` and `bench-rescore` that the existing tests do not cover: each is
one line naming the file or option, exit status 2, and no traceback."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from bench.cli.evaluate import eval_main, rescore_main
from bench.core.records import RECORD_NAME, read_record, write_record
from bench.evaluate.image_files import save_samples, write_png_folder
from tests.helpers.cli_runs import make_run, run_cli


def _one_line(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("error: ")
    assert "Traceback" not in err and all(n in err for n in needles), err


@pytest.mark.parametrize(
    "case, needle",
    [
        ("missing", "expected a folder of PNG images"),
        ("truncated_png", "expected a readable PNG"),
        ("unknown_dataset", "dataset"),
        ("n_zero", "--n 0: expected 1..64"),
        ("rgb_for_grey", None),
    ],
)
def test_eval_images_more_bad_input(case, needle, bars, tmp_path, capsys):
    folder = tmp_path / "png"
    write_png_folder(folder, bars.val_images, bars.spec.levels)
    argv = ["--images", str(folder), "--dataset", "procedural"]
    if case == "missing":
        argv[1] = str(tmp_path / "nowhere")
    elif case == "truncated_png":
        data = (folder / "00002.png").read_bytes()
        (folder / "00002.png").write_bytes(data[: len(data) // 2])
    elif case == "unknown_dataset":
        argv[3] = "mnistt"
    elif case == "n_zero":
        argv += ["--n", "0"]
    else:  # colour images for a grey dataset are converted, as a user would expect
        Image.new("RGB", (8, 8), (255, 0, 0)).save(folder / "00001.png")
    code, out, err = run_cli(eval_main, argv, capsys)
    if needle is None:
        assert code == 0
        return
    _one_line(code, out, err, needle)


@pytest.mark.parametrize("damage", ["truncated", "random", "empty", "missing", "no_record", "os_system_target"])
def test_eval_run_more_bad_input(damage, bars, tmp_path, capsys):
    run_dir, _ = make_run(tmp_path, bars)
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    marker = tmp_path / "marker"
    data = ckpt.read_bytes()
    needle = str(ckpt)
    if damage == "truncated":
        ckpt.write_bytes(data[: len(data) // 2])
    elif damage == "random":
        ckpt.write_bytes(np.random.default_rng(0).bytes(len(data)))
    elif damage == "empty":
        ckpt.write_bytes(b"")
    elif damage == "missing":
        ckpt.unlink()
    elif damage == "no_record":
        (run_dir / RECORD_NAME).unlink()
        needle = f"{run_dir}: expected a run folder holding a readable {RECORD_NAME}"
    else:
        record = read_record(run_dir)
        record["config"]["model"]["net"] = {"_target_": "os.system", "command": f"touch {marker}"}
        write_record(run_dir, record)
        needle = "config.model.net._target_='os.system': not a network the 'independent_pixels' family declares"
    code, out, err = run_cli(eval_main, ["--run", str(run_dir)], capsys)
    assert not marker.exists()
    _one_line(code, out, err, needle)


@pytest.mark.parametrize("case", ["missing_path", "wrong_shape", "wrong_levels"])
def test_rescore_more_bad_input(case, bars, tmp_path, capsys):
    run_dir, samples = make_run(tmp_path, bars)
    target = str(run_dir)
    if case == "missing_path":
        target = str(tmp_path / "nowhere")
    elif case == "wrong_shape":
        save_samples(run_dir, torch.zeros(10, 1, 9, 9, dtype=torch.uint8), bars.spec.levels)
    else:
        save_samples(run_dir, samples, 17)
    before = (run_dir / RECORD_NAME).read_bytes()
    code, out, err = run_cli(rescore_main, [target], capsys)
    _one_line(code, out, err, target if case == "missing_path" else "samples.npz")
    assert (run_dir / RECORD_NAME).read_bytes() == before
