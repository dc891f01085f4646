"""Where a run trains: refuse a GPU trainer without CUDA in one line, and pick a precision the device has.

`trainer=gpu` asks for `bf16-mixed`. GPUs before Ampere (compute capability 8.0) have no bf16;
Lightning would fail or emulate it slowly there, so the run falls back to `16-mixed` (fp16 autocast
with loss scaling; fast on tensor cores, compute capability >= 7.0) or else to `32-true`. The choice
is a pure function of what the device supports, so it is tested without a GPU.
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from bench.core.errors import BenchError

GPU_ACCELERATORS = ("gpu", "cuda")
BF16_PRECISIONS = ("bf16-mixed", "bf16", "bf16-true")
#: fp16 autocast pays off from Volta's tensor cores on; below that, full precision is as fast and safer.
FP16_MIN_CAPABILITY = (7, 0)


def choose_precision(requested: str, bf16_supported: bool, fp16_fast: bool) -> str:
    """The precision to train with: `requested` unless it is a bf16 one the device lacks.

    bf16 mixed falls back to `16-mixed` where fp16 is fast, else to `32-true`; `bf16-true` (pure
    bf16 weights) falls back to `32-true`, since pure fp16 weights are not a safe substitute.
    """
    requested = str(requested)
    if requested not in BF16_PRECISIONS or bf16_supported:
        return requested
    if requested != "bf16-true" and fp16_fast:
        return "16-mixed"
    return "32-true"


def uses_gpu(trainer_cfg: DictConfig) -> bool:
    return str(trainer_cfg.get("accelerator", "cpu")) in GPU_ACCELERATORS


def check_accelerator(trainer_cfg: DictConfig) -> None:
    """Raise one `BenchError` line when the trainer asks for CUDA devices this machine does not have."""
    if not uses_gpu(trainer_cfg):
        return
    if not torch.cuda.is_available():
        build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
        hint = "use trainer=cpu"
        if str(trainer_cfg.get("strategy", "")).startswith("ddp"):
            hint += " (or trainer.accelerator=cpu for DDP across CPU processes, with gloo)"
        raise BenchError(
            f"trainer.accelerator={trainer_cfg.accelerator}: no CUDA device is available on this "
            f"machine (torch {torch.__version__} {build}); {hint}"
        )
    devices = trainer_cfg.get("devices", 1)
    wanted = len(devices) if OmegaConf.is_list(devices) else devices
    if isinstance(wanted, int) and wanted > torch.cuda.device_count():
        raise BenchError(
            f"trainer.devices={wanted}: expected at most {torch.cuda.device_count()}, "
            "the CUDA devices visible on this machine"
        )


def device_precision(requested: str) -> tuple[str, str | None]:
    """`(precision, note)` for training on the current CUDA device; `note` says why it changed, else None."""
    major, minor = torch.cuda.get_device_capability()
    chosen = choose_precision(requested, torch.cuda.is_bf16_supported(), (major, minor) >= FP16_MIN_CAPABILITY)
    if chosen == str(requested):
        return chosen, None
    return chosen, (
        f"precision: {torch.cuda.get_device_name()} (compute capability {major}.{minor}) has no bf16; "
        f"training with {chosen} instead of {requested}"
    )


def trainer_settings(trainer_cfg: DictConfig) -> dict[str, Any]:
    """The Lightning `Trainer` keyword arguments for `trainer_cfg`, with the precision the device supports.

    The config (and so the run's hash) keeps the requested precision; the record's environment says
    which one was used (`effective_precision`).
    """
    kwargs: dict[str, Any] = OmegaConf.to_container(trainer_cfg, resolve=True)
    kwargs.pop("early_stopping", None)  # bench's own key (`bench.run.fit.early_stopping`)
    if uses_gpu(trainer_cfg) and torch.cuda.is_available() and "precision" in kwargs:
        kwargs["precision"], note = device_precision(kwargs["precision"])
        if note:
            print(note, flush=True)
    return kwargs


def effective_precision(trainer_cfg: DictConfig) -> str | None:
    """The precision `trainer_settings` trains with, for the record (None if the config sets none)."""
    requested = trainer_cfg.get("precision")
    if requested is None or not (uses_gpu(trainer_cfg) and torch.cuda.is_available()):
        return None if requested is None else str(requested)
    return device_precision(str(requested))[0]
