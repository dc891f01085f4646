"""Throwaway plugin packages for the plugin tests: a real installable one (pip into a target
folder) and hand-written distributions for the broken cases (real `importlib.metadata`
discovery sees both the same way)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

#: A gradient-trained family with free per-pixel logits (exact likelihood): tests/helpers/free_logits.py.
TOY_FAMILY = (Path(__file__).parent / "free_logits.py").read_text()

TOY_CONFIG = """\
name: {name}
family: {family}
batch_size: 32
module:
  lr: 0.05
net:
  _target_: {module}.family.Logits
"""


def write_plugin(
    root: Path,
    dist: str = "toyplug",
    version: str = "0.3.0",
    module: str = "toyplug",
    family: str = "toy",
    model: str = "toy",
    config_family: str | None = None,
) -> Path:
    """A plugin's source tree (family module, `conf/model/<model>.yaml`, both entry points)."""
    src = root / dist
    (src / module / "conf" / "model").mkdir(parents=True)
    (src / module / "__init__.py").write_text("")
    (src / module / "family.py").write_text(TOY_FAMILY.replace('family = "toy"', f'family = "{family}"'))
    (src / module / "conf" / "model" / f"{model}.yaml").write_text(
        TOY_CONFIG.format(name=model, family=config_family or family, module=module)
    )
    (src / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{dist}"
        version = "{version}"

        [project.entry-points."bench.models"]
        {family} = "{module}.family:ToyPixels"

        [project.entry-points."bench.configs"]
        {dist} = "{module}.conf"

        [tool.setuptools.packages.find]
        include = ["{module}*"]

        [tool.setuptools.package-data]
        {module} = ["conf/**/*.yaml"]
        """)
    )
    return src


def pip_install(source: Path, target: Path) -> None:
    """`pip install --no-deps --no-build-isolation --target target source`: nothing is fetched."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        cwd=source.parent,
    )


def write_distribution(site: Path, dist: str, entry_points: dict[str, dict[str, str]], version: str = "1.0") -> None:
    """A bare installed distribution in `site`: metadata and entry points, no code."""
    info = site / f"{dist}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = []
    for group, points in entry_points.items():
        lines += [f"[{group}]", *(f"{name} = {value}" for name, value in points.items()), ""]
    (info / "entry_points.txt").write_text("\n".join(lines))
