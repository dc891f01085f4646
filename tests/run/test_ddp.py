"""`trainer=ddp`: the launch plan, per-rank batches, the budget summed over ranks (the refusal
without CUDA is in test_accelerator.py), and (slow) a real 2-process run on CPU (gloo) through `bench-train`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bench.core.errors import BenchError
from bench.data import ImageDataModule
from bench.run.budget import CLOCK_SYNC_EVERY, TrainingBudget
from bench.run.fit import ddp_strategy
from bench.run.launch import Launch, plan_launch
from tests.helpers import REPO_ROOT
from tests.helpers.configs import compose_config

CPU_DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true"]
TINY_RNN = ["model=rnn", "model.net.hidden=16", "model.net.layers=1", "model.net.embed_dim=8", "model.batch_size=16"]


def test_launch_plan_spawns_one_process_per_device_on_one_machine(monkeypatch):
    for key in ("LOCAL_RANK", "RANK", "SLURM_NTASKS", "SLURM_PROCID"):
        monkeypatch.delenv(key, raising=False)
    assert plan_launch(compose_config(["trainer=cpu"]).trainer) == Launch("single")
    assert plan_launch(compose_config(CPU_DDP).trainer) == Launch("spawn", world_size=2)
    with pytest.raises(BenchError, match=r"^trainer\.strategy=ddp_spawn: expected one of ddp, "):
        plan_launch(compose_config([*CPU_DDP, "trainer.strategy=ddp_spawn"]).trainer)
    with pytest.raises(BenchError, match=r"^trainer\.num_nodes=2: several nodes need a launcher"):
        plan_launch(compose_config([*CPU_DDP, "trainer.num_nodes=2"]).trainer)
    with pytest.raises(BenchError, match=r"^trainer\.devices=auto: expected a number of devices"):
        plan_launch(compose_config([*CPU_DDP, "trainer.devices=auto"]).trainer)


def test_launch_plan_where_local_rank_is_set_is_this_process_rank(monkeypatch):
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("NODE_RANK", "1")
    assert plan_launch(compose_config([*CPU_DDP, "trainer.num_nodes=2"]).trainer) == Launch("external", 4, rank=3)


def test_a_slurm_job_with_fewer_tasks_than_processes_is_one_line(monkeypatch):
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "bench")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    with pytest.raises(
        BenchError,
        match=r"^trainer\.devices x trainer\.num_nodes = 2 processes, but this SLURM "
        r"job has 1 task\(s\): set hydra\.launcher\.tasks_per_node",
    ):
        plan_launch(compose_config(CPU_DDP).trainer)


def test_ranks_draw_equal_disjoint_batches_and_validate_on_the_whole_split():
    cfg = compose_config(["dataset=procedural"])
    batches, val = {}, {}
    for rank in (0, 1):
        dm = ImageDataModule(batch_size=16, shuffle_seed=3, **{k: v for k, v in cfg.dataset.items()})
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank)
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(1)  # as Lightning does at each epoch
        batches[rank] = list(loader.sampler)  # the index lists the batches are gathered from
        val[rank] = torch.cat([images for images, _ in dm.val_dataloader()])
    assert len(batches[0]) == len(batches[1]) == (len(dm.train_images) // 2) // 16
    assert all(len(b) == 16 for rank in (0, 1) for b in batches[rank])
    drawn = [i for rank in (0, 1) for b in batches[rank] for i in b]
    assert len(drawn) == len(set(drawn))  # no image twice in an epoch: no padding
    assert torch.equal(val[0], dm.val_images) and torch.equal(val[1], dm.val_images)  # not sharded


def test_gan_trains_under_ddp_with_unused_parameter_detection():
    from bench.models.base import GenerativeModule
    from bench.models.gan import GAN

    assert ddp_strategy("ddp", GAN) == "ddp_find_unused_parameters_true"  # the critic's step skips the generator
    assert ddp_strategy("ddp", GenerativeModule) == "ddp"
    assert ddp_strategy("auto", GAN) == "auto"


def _fake_trainer(world: int, rank0_elapsed: float):
    strategy = SimpleNamespace(
        broadcast=lambda obj, src=0: rank0_elapsed, reduce_boolean_decision=lambda decision, all=True: decision
    )
    return SimpleNamespace(
        world_size=world,
        strategy=strategy,
        should_stop=False,
        callback_metrics={},
        global_step=0,
        lightning_module=None,
        optimizers=[],
    )


def test_budget_sums_samples_over_ranks_and_shares_rank0_clock():
    budget = TrainingBudget("samples", 32 * CLOCK_SYNC_EVERY)
    trainer = _fake_trainer(world=2, rank0_elapsed=0.25)
    batch = (torch.zeros(16, 1, 8, 8), torch.zeros(16))
    for step in range(CLOCK_SYNC_EVERY):
        budget.on_train_batch_start(trainer, SimpleNamespace(lr_factor=lambda f: 1.0), batch, step)
        budget.on_train_batch_end(trainer, None, None, batch, step)
        assert trainer.should_stop == (step == CLOCK_SYNC_EVERY - 1)
    assert budget.samples_seen == 2 * 16 * CLOCK_SYNC_EVERY  # the sum over ranks, no collective
    assert budget.train_seconds == 0.25  # rank 0's time, whatever this rank measured


def _run_two_ranks(tmp_path, launcher: list[str], budget: int, batch: int) -> dict:
    """A tiny RNN on 2 CPU processes through the CLI; the run's one record (asserted to be alone)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    args = [
        *CPU_DDP,
        *TINY_RNN,
        "dataset=procedural",
        "budget=samples",
        f"budget.value={budget}",
        "threads=1",
        "progress=none",
        f"results_dir={tmp_path / 'results'}",
        "protocol.n_generated=64",
        "protocol.iwae_k=4",
        "protocol.kid_subsets=10",
    ]
    done = subprocess.run(
        [sys.executable, *launcher, "-m", "bench.cli.train", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    runs = tmp_path / "results" / "runs"
    folders = [p for p in runs.iterdir() if not p.name.startswith(".")]
    assert len(folders) == 1, folders  # the other rank made no folder of its own
    assert [p.name for p in folders[0].glob("*.json")] == ["result.json"]
    record = json.loads((folders[0] / "result.json").read_text())
    assert record["status"] == "completed", record["message"]
    steps, seen = record["training"]["optimizer_steps"], record["training"]["samples_seen"]
    assert seen == 2 * steps * batch  # every rank's batches counted, and each once
    assert seen - 2 * batch < budget <= seen  # stopped at the first step that spent the budget
    assert record["budget"]["stopped_by"] == "samples"
    samples = np.load(folders[0] / "samples.npz")
    assert len(samples[samples.files[0]]) == 64  # evaluated once, on rank 0: N samples, no duplicates
    logged = (folders[0] / "metrics.csv").read_text().splitlines()
    assert len(logged) == len(set(logged))  # one logger (rank 0), each row once
    return record


@pytest.mark.slow
def test_two_cpu_processes_write_one_record_with_samples_summed_over_ranks(tmp_path):
    # 600 is not a multiple of 2 ranks x 16: the last step overshoots
    record = _run_two_ranks(tmp_path, [], budget=600, batch=16)
    assert record["config"]["trainer"]["devices"] == 2 and record["environment"]["precision"] == "32-true"


@pytest.mark.slow
def test_ranks_started_by_torchrun_leave_the_run_to_rank_0(tmp_path):
    """The path SLURM takes too: each process is one rank of an outside launch."""
    _run_two_ranks(tmp_path, ["-m", "torch.distributed.run", "--nproc_per_node=2"], budget=320, batch=16)
