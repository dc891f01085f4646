"""`trainer=gpu`: the precision fallback (pure, tested everywhere), the one-line refusal without CUDA,
and a tiny GPU run (marked `gpu`: skipped, with its reason, where CUDA is absent)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from bench.config.schema import TRAINER_BENCH_KEYS
from bench.core.errors import BenchError
from bench.pipeline.train_task import train
from bench.run.accelerator import check_accelerator, choose_precision, effective_precision, trainer_settings
from tests.helpers import REPO_ROOT
from tests.helpers.configs import compose_config, tiny_overrides

NO_CUDA = not torch.cuda.is_available()


@pytest.mark.parametrize(
    "requested, bf16, fp16_fast, expected",
    [
        ("bf16-mixed", True, True, "bf16-mixed"),  # Ampere and later: as asked
        ("bf16-mixed", False, True, "16-mixed"),  # Volta/Turing: fp16 autocast with loss scaling
        ("bf16-mixed", False, False, "32-true"),  # older: full precision
        ("bf16-true", False, True, "32-true"),  # pure bf16 weights have no safe fp16 twin
        ("bf16-true", True, False, "bf16-true"),
        ("16-mixed", False, False, "16-mixed"),  # only bf16 requests are rewritten
        ("32-true", False, False, "32-true"),
    ],
)
def test_precision_falls_back_only_where_bf16_is_missing(requested, bf16, fp16_fast, expected):
    assert choose_precision(requested, bf16_supported=bf16, fp16_fast=fp16_fast) == expected


def test_cpu_trainer_settings_are_the_config_unchanged():
    cfg = compose_config(["trainer=cpu"])
    bench_keys = set(TRAINER_BENCH_KEYS)  # read by bench itself (early stopping), never passed to Lightning
    assert trainer_settings(cfg.trainer) == {k: cfg.trainer[k] for k in cfg.trainer if k not in bench_keys}
    assert effective_precision(cfg.trainer) == "32-true"
    check_accelerator(cfg.trainer)  # a CPU trainer never needs CUDA


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA: the no-CUDA message cannot be shown here")
@pytest.mark.parametrize(
    "trainer, ending",
    [
        ("gpu", r"; use trainer=cpu$"),
        ("ddp", r"; use trainer=cpu \(or trainer\.accelerator=cpu for DDP across CPU processes, with gloo\)$"),
    ],
)
def test_a_gpu_trainer_without_cuda_is_one_line_naming_the_key(trainer, ending, tmp_path):
    with pytest.raises(BenchError, match=r"^trainer\.accelerator=gpu: no CUDA device .*" + ending):
        check_accelerator(compose_config([f"trainer={trainer}"]).trainer)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli.train", f"trainer={trainer}", *tiny_overrides(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: trainer.accelerator=gpu: no CUDA device"), done.stderr
    assert not list(tmp_path.glob("runs/*__*"))  # refused before a run folder was made


@pytest.mark.gpu
def test_gpu_run_trains_evaluates_on_cuda_and_records_peak_memory(tmp_path):
    cfg = compose_config(tiny_overrides(tmp_path, "trainer=gpu"))
    record = train(cfg)
    assert record["status"] == "completed", record["message"]
    major, minor = torch.cuda.get_device_capability()
    expected = choose_precision("bf16-mixed", torch.cuda.is_bf16_supported(), (major, minor) >= (7, 0))
    assert record["environment"]["precision"] == expected
    assert record["environment"]["device"].startswith("cuda: ")
    assert record["timing"]["peak_memory_kind"].startswith("cuda max_memory_allocated")
    assert record["timing"]["peak_memory_mb"] > 0


@pytest.mark.gpu
@pytest.mark.skipif(not NO_CUDA and not torch.cuda.is_bf16_supported(), reason="needs a CUDA device with bf16")
def test_bf16_mixed_trains_every_optimizer_path(tmp_path):
    """The GAN optimizes manually (two optimizers); the VAE and GPT use Lightning's automatic loop."""
    for model in ("gan", "gpt"):
        record = train(compose_config(tiny_overrides(tmp_path / model, "trainer=gpu", f"model={model}")))
        assert record["status"] == "completed", (model, record["message"])
        assert record["environment"]["precision"] == "bf16-mixed"


def test_more_devices_than_visible_is_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    cfg = compose_config(["trainer=gpu", "trainer.devices=2"])
    with pytest.raises(BenchError, match=r"^trainer\.devices=2: expected at most 1, the CUDA devices visible"):
        check_accelerator(cfg.trainer)
    check_accelerator(compose_config(["trainer=gpu"]).trainer)  # one device of one: fine
