"""Several processes per run (`trainer=ddp`): who starts them, and which one owns the run folder.

On one machine bench starts the processes itself: the job process (the one Hydra, or a launcher,
ran) keeps the run folder's lock, starts one worker per device with `torch.multiprocessing`
(spawn), and waits for them. Every worker sets `LOCAL_RANK` and friends before Lightning looks,
so Lightning's plain `ddp` strategy sees processes created externally and never re-executes the
command line (which, under `bench-train -m`, would re-run the whole sweep in every rank). Rank 0
does what a single-process run does (fit, evaluate, write the record); the other ranks only fit.

Across nodes, or where SLURM or `torchrun` already started one process per device, each process is
one rank of that launch: rank 0 runs as above, the others train and own nothing.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bench.core.errors import BenchError

#: Lightning strategies that the launch below supports: processes started outside Lightning.
DDP_STRATEGIES = ("ddp", "ddp_find_unused_parameters_true", "ddp_find_unused_parameters_false")
#: How long the other ranks may outlive rank 0 (they only save a checkpoint and leave after fit).
RANK_EXIT_GRACE_S = 120.0


@dataclass(frozen=True)
class Launch:
    """How a run's processes start: `single` (one process), `spawn` (bench starts `world_size`
    workers on this machine) or `external` (this process is rank `rank` of an outside launch)."""

    kind: str
    world_size: int = 1
    rank: int = 0


def world_size(trainer_cfg: DictConfig) -> int:
    """Processes the trainer asks for: devices per node x nodes (1 where `devices` is not a count)."""
    devices = trainer_cfg.get("devices", 1)
    per_node = len(devices) if OmegaConf.is_list(devices) else devices
    nodes = trainer_cfg.get("num_nodes", 1)
    if isinstance(per_node, bool) or not isinstance(per_node, int) or per_node < 1:
        return 1
    return per_node * (nodes if isinstance(nodes, int) and not isinstance(nodes, bool) and nodes > 0 else 1)


def _outside_launcher() -> str | None:
    """The launcher that started one process per device, if one did: SLURM (srun), torchrun, or a
    user who set `LOCAL_RANK` (Lightning's convention), as Lightning itself detects them."""
    from lightning_fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment  # noqa: PLC0415  (heavy: bench-train's command line is answered before torch loads)

    if TorchElasticEnvironment.detect():
        return "torchrun"
    if SLURMEnvironment.detect():
        return "SLURM"
    if "LOCAL_RANK" in os.environ:
        return "LOCAL_RANK"
    return None


def _outside_rank(launcher: str, devices_per_node: int) -> int:
    if launcher == "torchrun":
        return int(os.environ["RANK"])
    if launcher == "SLURM":
        return int(os.environ.get("SLURM_PROCID", 0))
    return int(os.environ.get("NODE_RANK", 0)) * devices_per_node + int(os.environ["LOCAL_RANK"])


def plan_launch(trainer_cfg: DictConfig) -> Launch:
    """The `Launch` for `trainer_cfg` in this process's environment; a `BenchError` (one line) for a
    strategy or a node count this code cannot start."""
    world, strategy = world_size(trainer_cfg), str(trainer_cfg.get("strategy", "auto"))
    devices = trainer_cfg.get("devices", 1)
    if strategy.startswith("ddp") and world == 1 and devices != 1 and not OmegaConf.is_list(devices):
        # `auto` or -1 would let Lightning start the ranks by re-executing the command line
        raise BenchError(
            f"trainer.devices={devices}: expected a number of devices (or a list of device ids) "
            f"with trainer.strategy={strategy}"
        )
    if world == 1:
        return Launch("single")
    if strategy not in DDP_STRATEGIES:
        raise BenchError(
            f"trainer.strategy={strategy}: expected one of {', '.join(DDP_STRATEGIES)} with "
            f"{world} processes (bench starts them itself; see README, 'Running on a GPU or a cluster')"
        )
    launcher = _outside_launcher()
    if launcher == "SLURM" and int(os.environ.get("SLURM_NTASKS", world)) != world:
        raise BenchError(
            f"trainer.devices x trainer.num_nodes = {world} processes, but this SLURM job has "
            f"{os.environ['SLURM_NTASKS']} task(s): set hydra.launcher.tasks_per_node to "
            "trainer.devices and hydra.launcher.nodes to trainer.num_nodes (one task per GPU)"
        )
    if launcher is not None:
        return Launch("external", world, _outside_rank(launcher, world // int(trainer_cfg.get("num_nodes", 1))))
    nodes = trainer_cfg.get("num_nodes", 1)
    if nodes != 1:
        raise BenchError(
            f"trainer.num_nodes={nodes}: several nodes need a launcher that starts one process per "
            "device on each node: SLURM (hydra/launcher=slurm_example with tasks_per_node equal to "
            "trainer.devices) or torchrun"
        )
    return Launch("spawn", world)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def set_rank_environment(local_rank: int, world: int, port: int) -> None:
    """What Lightning's `LightningEnvironment` reads in a process that someone else started."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), NODE_RANK="0", LOCAL_RANK=str(local_rank)
    )


def spawn_ranks(entry: Callable[..., None], args: tuple[Any, ...], world: int) -> str | None:
    """Run `entry(local_rank, port, *args)` in `world` fresh processes and wait for them.

    Returns None when all exited cleanly, else one line saying which rank failed and how. Once rank 0
    has exited (after evaluating, which the others do not wait for), a rank still running after
    `RANK_EXIT_GRACE_S` is stuck in a collective that rank 0 left, and is terminated.
    """
    import torch.multiprocessing as mp  # noqa: PLC0415  (heavy: bench-train's command line is answered before torch loads)

    context = mp.start_processes(entry, args=(_free_port(), *args), nprocs=world, join=False, start_method="spawn")
    rank0_done_at: float | None = None
    try:
        while not context.join(timeout=1.0):
            if rank0_done_at is None and not context.processes[0].is_alive():
                rank0_done_at = time.monotonic()
            if rank0_done_at is not None and time.monotonic() - rank0_done_at > RANK_EXIT_GRACE_S:
                stuck = [rank for rank, proc in enumerate(context.processes) if proc.is_alive()]
                for rank in stuck:
                    context.processes[rank].terminate()
                return (
                    f"rank(s) {', '.join(map(str, stuck))} still running {RANK_EXIT_GRACE_S:.0f} s after rank 0 ended"
                )
    except mp.ProcessRaisedException as err:  # the others were terminated by `join`
        last = str(err).strip().splitlines()[-1]
        return f"rank {err.error_index} failed: {last}"
    except mp.ProcessExitedException as err:
        return f"rank {err.error_index} exited with code {err.exit_code}"
    except BaseException:  # Ctrl+C: the workers got it too; do not leave any behind
        for proc in context.processes:
            if proc.is_alive():
                proc.terminate()
        raise
    return None
