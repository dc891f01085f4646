"""Adds every installed bench plugin's config package, then the user's own `conf/` folders (the
working directory's, then the repository's: `bench.config.choices.user_config_folders`), to
Hydra's search path.

Acts only when the primary config is bench's own (`bench/conf`), so other Hydra applications in
the same environment are untouched. These folders come after bench's own, in that order, so a
built-in config of the same name wins, and a plugin's wins over a user's.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


def _bench_conf() -> Path | None:
    """bench's own config folder, found without importing bench (Hydra scans plugins early)."""
    spec = importlib.util.find_spec("bench")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return (Path(locations[0]) / "conf").resolve() if locations else None


def _is_bench_primary(path: str) -> bool:
    if path.startswith("pkg://"):
        return path[len("pkg://") :].strip("/").replace("/", ".") == "bench.conf"
    folder = path[len("file://") :] if path.startswith("file://") else path
    return Path(folder).resolve() == _bench_conf()


class BenchPluginSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if not any(e.provider == "main" and _is_bench_primary(e.path) for e in search_path.get_path()):
            return
        from bench.config.choices import user_config_folders  # noqa: PLC0415  (Hydra imports every plugin at start-up: bench loads when used)
        from bench.config.plugins import config_packages  # noqa: PLC0415  (Hydra imports every plugin at start-up: bench loads when used)

        for name, (package, _folder, _source) in config_packages().items():
            search_path.append(f"bench-plugin:{name}", f"pkg://{package}")
        for folder in user_config_folders():
            search_path.append("bench-user", f"file://{folder}")
