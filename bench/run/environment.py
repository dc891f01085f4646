"""What a result was measured on: package versions, device, threads, git revision, and which
package (version, revision) provided the model's family."""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from bench.config.plugins import available, family_source

PACKAGES = (
    "torch",
    "torchvision",
    "pytorch-lightning",
    "torchmetrics",
    "hydra-core",
    "numpy",
    "scipy",
    "scikit-learn",
    "bench",
)


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def git_revision(root: Path | None = None) -> str | None:
    """The commit of the checkout `root` (default: this package's) runs from, suffixed '+dirty'
    with local changes; None outside a checkout or for an installed copy in site-packages."""
    root = root or Path(__file__).resolve().parents[2]
    if {"site-packages", "dist-packages"} & set(root.parts):
        return None  # an installed copy: a repository around the environment is not its source
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()}"


def cpu_model() -> str | None:
    """The CPU's model name (Linux `/proc/cpuinfo`), so two machines' `cpu: x86_64` tell apart."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def model_source(family: str) -> dict:
    """The package, version and git revision that provided `family` (bench itself for built-ins)."""
    source = family_source(family)
    if source.package is None:
        return {
            "family": family,
            "package": "bench",
            "version": _version("bench"),
            "builtin": True,
            "git_revision": git_revision(),
        }
    module = importlib.import_module(available()[family].partition(":")[0])
    root = Path(module.__file__).resolve().parent if getattr(module, "__file__", None) else None
    return {
        "family": family,
        "package": source.package,
        "version": source.version,
        "builtin": False,
        "git_revision": git_revision(root) if root else None,
    }


def environment(device: torch.device, concurrent_jobs: int, family: str | None = None) -> dict:
    return {
        **({"model_source": model_source(family)} if family else {}),
        "packages": {name: _version(name) for name in PACKAGES},
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": device_name(device),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "git_revision": git_revision(),
        "concurrent_jobs": concurrent_jobs,
    }
