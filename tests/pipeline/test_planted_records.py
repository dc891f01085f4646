"""A run folder someone sent is data: a planted `result.json` never makes bench build or write
anything. Every command that rebuilds a run from its record refuses alike, in one line naming
the record file and the key: `bench-eval --run`, `bench-time`, `bench-rescore`, the sweep's
timing pass."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.cli.evaluate import eval_main, rescore_main
from bench.cli.time import main as time_main
from bench.core.errors import BenchError
from bench.evaluate.metrics.likelihood import bits_per_dim
from bench.evaluate.reference.extractor import cache_dir
from bench.pipeline.saved_run import read_saved_run
from bench.pipeline.timing_pass import time_sweep_jobs
from bench.pipeline.train_task import train
from tests.helpers.configs import compose_config, tiny_overrides

# each case: (what the sender sets, the key bench's refusal names)
PLANTS = {
    "nested_target": (
        lambda r, marker: r["config"]["model"]["net"].update(
            extra={"_target_": "shutil.copyfile", "_args_": [str(marker.parent / "result.json"), str(marker)]}
        ),
        "config.model.net.extra._target_",
    ),
    "undeclared_network": (
        lambda r, marker: r["config"]["model"].update(net={"_target_": "logging.FileHandler", "filename": str(marker)}),
        "config.model.net._target_",
    ),
    "env_interpolation": (
        lambda r, marker: r["config"]["dataset"].update(root="${oc.env:HOME}"),
        "config.dataset.root",
    ),
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A completed tiny run whose sampling speed was left to a timing pass (as in a parallel sweep)."""
    results = tmp_path_factory.mktemp("results")
    cfg = compose_config(
        tiny_overrides(
            results,
            "model=cnn_decoder",
            "concurrent_jobs=2",
            "logger=none",
            "protocol.quality_curve.every_seconds=null",
        )
    )
    record = train(cfg)
    assert record["status"] == "completed" and record["timing"]["measurement"]["pass"] == "deferred"
    return results / "runs" / record["run_id"]


def plant(run_dir: Path, folder: Path, case: str) -> tuple[Path, str]:
    """A copy of `run_dir` at `folder` whose record carries the sender's `case`; returns the file a
    successful attack would create, and the key the refusal must name."""
    shutil.copytree(run_dir, folder)
    marker = folder.parent / f"{folder.name}-marker"
    record = json.loads((folder / "result.json").read_text())
    edit, key = PLANTS[case]
    edit(record, marker)
    (folder / "result.json").write_text(json.dumps(record))
    return marker, key


def folder_state(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def call(main, argv: list[str]) -> int:
    try:
        return main(argv) or 0
    except SystemExit as exit_:
        return exit_.code


@pytest.mark.parametrize("case", PLANTS)
def test_bench_eval_refuses_a_planted_record_in_one_line_and_writes_nothing(case, run_dir, tmp_path, capsys):
    marker, key = plant(run_dir, tmp_path / "planted", case)
    before = folder_state(tmp_path)
    assert call(eval_main, ["--run", str(tmp_path / "planted"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(tmp_path / "planted" / "result.json") in err[0]
    assert key in err[0]
    assert not marker.exists() and folder_state(tmp_path) == before


def test_bench_time_and_rescore_skip_each_planted_run_finish_the_others_and_exit_non_zero(run_dir, tmp_path, capsys):
    folder = tmp_path / "runs"
    good = folder / "good"
    shutil.copytree(run_dir, good)
    planted = {case: plant(run_dir, folder / f"planted-{case}", case) for case in PLANTS}
    before = {case: folder_state(folder / f"planted-{case}") for case in PLANTS}

    assert call(time_main, [str(folder)]) == 1
    out = capsys.readouterr().out
    assert "timed good" in out
    assert json.loads((good / "result.json").read_text())["timing"]["sample_images_per_s"] > 0
    assert call(rescore_main, [str(folder)]) == 1
    rescore_out, rescore_err = capsys.readouterr()
    assert f"rescored {good}" in rescore_out

    for case, (marker, key) in planted.items():
        record_file = f"planted-{case}/result.json"
        [said] = [line for line in out.splitlines() if record_file in line]
        assert said.startswith("error: timing planted-") and key in said
        assert len([line for line in rescore_err.splitlines() if record_file in line and key in line]) == 1
        assert not marker.exists() and folder_state(folder / f"planted-{case}") == before[case]
    assert len(rescore_err.strip().splitlines()) == len(PLANTS)


@pytest.mark.parametrize("case", PLANTS)
def test_the_sweeps_timing_pass_refuses_a_planted_record_in_a_jobs_folder(case, run_dir, tmp_path, capsys):
    results = tmp_path / "results"
    job = compose_config(
        tiny_overrides(
            results,
            "model=cnn_decoder",
            "concurrent_jobs=2",
            "logger=none",
            "protocol.quality_curve.every_seconds=null",
        )
    )
    job_folder = results / "runs" / run_dir.name
    marker, key = plant(run_dir, job_folder, case)
    before = folder_state(job_folder)
    assert time_sweep_jobs([job], threads=1) == [run_dir.name]
    refusals = [line for line in capsys.readouterr().out.splitlines() if line.startswith("error:")]
    assert len(refusals) == 1 and key in refusals[0]
    assert not marker.exists() and folder_state(job_folder) == before


def test_the_sweeps_timing_pass_never_reads_a_folder_no_job_names(run_dir, tmp_path, capsys):
    results = tmp_path / "results"
    job = compose_config(
        tiny_overrides(
            results,
            "model=cnn_decoder",
            "concurrent_jobs=2",
            "logger=none",
            "protocol.quality_curve.every_seconds=null",
        )
    )
    shutil.copytree(run_dir, results / "runs" / run_dir.name)
    marker, _ = plant(run_dir, results / "runs" / "planted__00000000", "nested_target")
    before = folder_state(results / "runs" / "planted__00000000")
    assert time_sweep_jobs([job], threads=1) == []
    out = capsys.readouterr().out
    assert f"timed {run_dir.name}" in out and "planted" not in out
    assert not marker.exists() and folder_state(results / "runs" / "planted__00000000") == before


def test_a_record_never_chooses_downloads_caches_or_checkpoints_outside_its_folder(run_dir, tmp_path):
    folder = tmp_path / "received"
    shutil.copytree(run_dir, folder)
    record = json.loads((folder / "result.json").read_text())
    record["config"]["dataset"] = {
        "name": "folder",
        "root": "/sender/photos",
        "download": True,
        "cache_dir": str(tmp_path / "sender-cache"),
        "source_args": {"download": True},
    }
    record["checkpoint"]["selected"] = "../../elsewhere/weights.ckpt"
    (folder / "result.json").write_text(json.dumps(record))

    run = read_saved_run(folder, root=str(tmp_path / "my-photos"))
    assert run.dataset["root"] == str(tmp_path / "my-photos")
    assert run.dataset["cache_dir"] == str(cache_dir() / "data")
    assert "download" not in run.dataset and run.dataset["source_args"] == {}
    assert read_saved_run(folder).dataset["root"] == "/sender/photos"  # only a default for reading
    with pytest.raises(
        BenchError,
        match=r"checkpoint.selected='../../elsewhere/weights.ckpt': expected a file "
        r"inside the run folder",
    ):
        run.checkpoint_path()


def test_a_network_the_user_names_is_built_when_the_user_trusts_it(run_dir, tmp_path, capsys):
    folder = tmp_path / "mine"
    shutil.copytree(run_dir, folder)
    record = json.loads((folder / "result.json").read_text())
    record["config"]["model"]["net"]["_target_"] = "my_nets.VAENet"
    (folder / "result.json").write_text(json.dumps(record))
    with pytest.raises(BenchError, match="declared: bench.models.cnn_decoder.ConvVAENet"):
        read_saved_run(folder)
    assert read_saved_run(folder, trusted_networks={"my_nets.VAENet"}).model["net"]["_target_"] == "my_nets.VAENet"


def test_every_shipped_model_config_builds_a_network_its_family_declares():
    """Else `bench-eval --run` would refuse the runs of bench's own presets."""
    from bench.config.choices import CONF_DIR
    from bench.models.registry import get_family

    names = sorted(path.stem for path in (Path(CONF_DIR) / "model").glob("*.yaml"))
    assert len(names) >= 6
    for name in names:
        model = compose_config([f"model={name}"]).model
        if model.get("net") is not None:
            assert model.net._target_ in get_family(model.family).networks, name


def test_a_record_with_a_key_its_family_does_not_take_is_one_line(run_dir, tmp_path, capsys):
    folder = tmp_path / "received"
    shutil.copytree(run_dir, folder)
    record = json.loads((folder / "result.json").read_text())
    record["config"]["model"]["module"]["bogus"] = 1
    (folder / "result.json").write_text(json.dumps(record))
    assert call(eval_main, ["--run", str(folder)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert (
        line.startswith(
            f"error: {folder / 'result.json'}: config.model.module: the cnn_decoder family cannot take these keys"
        )
        and "'bogus'" in line
    )


def test_the_likelihood_tables_checkpoint_is_held_to_the_same_rules(run_dir, tmp_path):
    folder = tmp_path / "received"
    shutil.copytree(run_dir, folder)
    record = json.loads((folder / "result.json").read_text())
    record["checkpoint"]["likelihood"]["selected"] = "../../elsewhere/weights.ckpt"
    (folder / "result.json").write_text(json.dumps(record))
    run = read_saved_run(folder)
    module = run.module(run.datamodule().spec)
    with pytest.raises(BenchError, match=r"checkpoint.likelihood.selected='../../elsewhere/weights.ckpt'"):
        run.likelihood_state(module)


def test_bench_eval_scores_bits_per_dim_with_the_likelihood_tables_checkpoint(run_dir, tmp_path, capsys):
    record = json.loads((run_dir / "result.json").read_text())
    quality, likelihood = record["checkpoint"], record["checkpoint"]["likelihood"]
    assert quality["selected_at"]["step"] != likelihood["selected_at"]["step"], "the tables must pick apart"
    assert call(eval_main, ["--run", str(run_dir)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["bits_per_dim"] == pytest.approx(record["metrics"]["bits_per_dim"], rel=1e-9)
    assert result["metrics"]["fid"] == pytest.approx(record["metrics"]["fid"], rel=1e-9)
    # and both are the bits/dim of the best-validation-bits/dim weights, measured here on their own
    run = read_saved_run(run_dir)
    dm = run.datamodule()
    module = run.module(dm.spec)
    module.load_state_dict(run.likelihood_state(module))
    protocol = record["protocol"]
    direct = bits_per_dim(module, dm.test_images, protocol["iwae_k"], protocol["scoring_seed"])
    assert direct["bits_per_dim"] == pytest.approx(record["metrics"]["bits_per_dim"], rel=1e-9)
