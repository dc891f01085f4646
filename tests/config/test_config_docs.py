"""docs/config.md documents every key of every YAML under bench/conf, and nothing that is not one.

An entry is a row of a table whose header starts `| key |`, its first cell holding the dotted key
in backticks as `bench-train` takes it on the command line (`dataset.val_size`, `model.net.d_model`,
`hydra.launcher.n_jobs`); one cell may hold several keys separated by commas. Keys of
`experiment/*.yaml` (`# @package _global_`) and of `config.yaml` are global; a group file's keys
are under its group (`hydra/launcher` files under `hydra.launcher`). A list is one key (its items
are values).
"""

from __future__ import annotations

import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from tests.helpers import REPO_ROOT

CONF = REPO_ROOT / "bench" / "conf"
DOC = REPO_ROOT / "docs" / "config.md"
_ROW_KEYS = re.compile(r"^\|\s*((?:`[^`]+`\s*,?\s*)+)\|")


def _leaves(node: DictConfig, prefix: str, top: bool = True) -> list[str]:
    keys = []
    for key in node.keys():
        if top and key == "defaults":  # a file's defaults list picks other files; it is not a key
            continue
        child = node._get_node(key)
        dotted = f"{prefix}{key}"
        if isinstance(child, DictConfig) and not child._is_none() and len(child):
            keys += _leaves(child, dotted + ".", top=False)
        else:
            keys.append(dotted)
    return keys


def _prefix(path: Path) -> str:
    rel = path.relative_to(CONF)
    if rel.parent == Path(".") or "# @package _global_" in path.read_text():
        return ""
    return ".".join(rel.parent.parts) + "."


def conf_keys() -> dict[str, list[Path]]:
    """Every leaf key under bench/conf -> the files that set it (read without resolving anything)."""
    found: dict[str, list[Path]] = {}
    for path in sorted(CONF.rglob("*.yaml")):
        for key in _leaves(OmegaConf.load(path), _prefix(path)):
            found.setdefault(key, []).append(path.relative_to(REPO_ROOT))
    return found


def documented_keys() -> set[str]:
    """Keys in the first cell of the rows of tables whose header starts `| key |`."""
    keys, in_key_table = set(), False
    for line in DOC.read_text().splitlines():
        if not line.startswith("|"):
            in_key_table = False
        elif line.startswith("| key |"):
            in_key_table = True
        elif in_key_table and (match := _ROW_KEYS.match(line)):
            keys.update(re.findall(r"`([^`]+)`", match.group(1)))
    return keys


def test_the_walk_finds_keys_of_every_kind_of_file():
    keys = conf_keys()
    for key in (
        "seed",
        "hydra.job.chdir",
        "dataset.val_size",
        "dataset.source_args.n",
        "model.net.d_model",
        "model.module.lr",
        "model.net._target_",
        "trainer.accelerator",
        "budget.value",
        "protocol.quality_curve.every_seconds",
        "hydra.launcher.n_jobs",
        "hydra.sweeper.params.model",
        "logger._target_",
        "model.module.betas",
    ):
        assert key in keys, key
    assert not any(k.split(".")[-1] == "defaults" or k.startswith("experiment.") for k in keys)


def test_every_config_key_has_an_entry_in_docs_config_md():
    documented = documented_keys()
    missing = [
        f"{key} (set in {', '.join(map(str, files))})"
        for key, files in sorted(conf_keys().items())
        if key not in documented
    ]
    assert not missing, "keys with no entry in docs/config.md:\n  " + "\n  ".join(missing)


def test_docs_config_md_documents_no_key_that_does_not_exist():
    nodes = {key.rsplit(".", i)[0] for key in conf_keys() for i in range(key.count(".") + 1)}
    stale = sorted(documented_keys() - nodes)  # a node above keys (`model.module`) may have a row too
    assert not stale, f"docs/config.md documents keys no file under bench/conf sets: {', '.join(stale)}"
