"""Crafted pickles never run: every place the package reads a checkpoint, cache or samples file
refuses an object whose unpickling would execute code, with one line naming the file."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from bench.cli.evaluate import eval_main, rescore_main
from bench.config.run_folder import run_directory
from bench.core.errors import BenchError
from bench.core.records import RECORD_NAME, read_record
from bench.data import ImageDataModule
from bench.evaluate.reference import extractor as ex
from bench.pipeline.train_task import train
from tests.helpers.cli_runs import DATASET, make_run, run_cli
from tests.helpers.configs import compose_config, tiny_overrides


class Payload:
    """Unpickling this creates `marker`: the stand-in for any code a hostile file would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def crafted_checkpoint(path, marker, real: dict | None = None) -> None:
    """A real checkpoint (zip format) with the payload hidden beside its weights."""
    torch.save({**(real or {"state_dict": {}}), "bench": {"family": Payload(marker)}}, path)


def raw_pickle(path, marker) -> None:
    path.write_bytes(pickle.dumps({"state_dict": Payload(marker)}))


@pytest.mark.parametrize("write", [crafted_checkpoint, raw_pickle])
def test_bench_eval_run_refuses_a_crafted_checkpoint(write, tmp_path, capsys):
    dm = ImageDataModule(**DATASET)
    run_dir, _ = make_run(tmp_path, dm)
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    marker = tmp_path / "marker"
    write(ckpt, marker)
    code, out, err = run_cli(eval_main, ["--run", str(run_dir)], capsys)
    assert not marker.exists()
    assert code == 2 and out == "" and err.count("\n") == 1 and str(ckpt) in err
    assert "expected a PyTorch checkpoint" in err and "Traceback" not in err


def test_bench_rescore_refuses_pickled_samples(tmp_path, capsys):
    dm = ImageDataModule(**DATASET)
    run_dir, _ = make_run(tmp_path, dm)
    marker = tmp_path / "marker"
    np.savez(run_dir / "samples.npz", images=np.array([Payload(marker)], dtype=object), levels=np.int64(4))
    before = (run_dir / RECORD_NAME).read_bytes()
    code, _, err = run_cli(rescore_main, [str(run_dir)], capsys)
    assert not marker.exists()
    assert code == 2 and err.count("\n") == 1 and str(run_dir / "samples.npz") in err
    assert (run_dir / RECORD_NAME).read_bytes() == before  # nothing lost


def test_the_classifier_cache_refuses_a_crafted_file(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    dm = ImageDataModule(**DATASET)
    ex.load_extractor(dm, protocol_version=1)  # trains and caches the reference classifier
    (cached,) = (tmp_path / "cache" / "classifiers").glob("*.pt")
    marker = tmp_path / "marker"
    torch.save({"conv.weight": Payload(marker)}, cached)
    with pytest.raises(BenchError, match="expected reference classifier weights") as err:
        ex.load_extractor(dm, protocol_version=1)
    assert not marker.exists() and str(cached) in str(err.value) and "\n" not in str(err.value)


def test_resume_sets_a_crafted_last_checkpoint_aside_and_starts_over(tmp_path, capsys):
    cfg = compose_config(tiny_overrides(tmp_path))
    first = train(cfg)
    run_dir = run_directory(cfg)
    last = run_dir / "checkpoints" / "last.ckpt"
    real = torch.load(last, weights_only=True)
    (run_dir / RECORD_NAME).unlink()  # as if killed after its last checkpoint
    marker = tmp_path / "marker"
    crafted_checkpoint(last, marker, real)
    capsys.readouterr()
    again = train(cfg)
    err = capsys.readouterr().err
    assert not marker.exists()
    assert f"warning: {last}" in err and "last.ckpt.unreadable" in err and "starts over" in err
    assert (run_dir / "checkpoints" / "last.ckpt.unreadable").is_file()  # set aside, not deleted
    assert again["status"] == "completed"
    assert again["training"]["samples_seen"] == first["training"]["samples_seen"]  # trained again from 0


@pytest.mark.parametrize("table", ["best_fid", "best_bpd"])
def test_the_selected_best_checkpoint_is_read_safely(tmp_path, capsys, table):
    cfg = compose_config(tiny_overrides(tmp_path))
    train(cfg)
    run_dir = run_directory(cfg)
    best = run_dir / "checkpoints" / f"{table}.ckpt"  # the sample-quality table's, and the likelihood table's
    (run_dir / RECORD_NAME).unlink()  # resumes with the budget spent: fit then reads best.ckpt
    marker = tmp_path / "marker"
    crafted_checkpoint(best, marker, torch.load(best, weights_only=True))
    record = train(cfg)
    assert not marker.exists()
    assert record["status"] == "failed" and str(best) in record["message"]
    assert "\n" not in record["message"] and read_record(run_dir)["status"] == "failed"


def test_a_numpy_rng_state_in_a_checkpoint_loads_but_an_object_array_does_not(tmp_path):
    import random

    from bench.run.checkpoints import load_checkpoint

    path = tmp_path / "rng.ckpt"
    torch.save({"numpy": np.random.get_state(), "python": random.getstate(), "torch": torch.get_rng_state()}, path)
    state = load_checkpoint(path)
    assert state["numpy"][0] == "MT19937" and np.array_equal(state["numpy"][1], np.random.get_state()[1])
    marker = tmp_path / "marker"
    torch.save({"objects": np.array([Payload(marker)], dtype=object)}, path)
    with pytest.raises(BenchError, match="expected a PyTorch checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()
