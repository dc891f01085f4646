"""The config hash covers every key of every preset except those `UNHASHED_KEYS` lists with a reason."""

from __future__ import annotations

from itertools import zip_longest
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from bench.config.choices import CONF_DIR
from bench.config.run_folder import UNHASHED_KEYS, config_hash, hashed_config


def _options(group: str) -> list[str]:
    return [f"{group}={path.stem}" for path in sorted((Path(CONF_DIR) / group).glob("*.yaml"))]


#: Every preset a user can name: the default config, each experiment, and each option of every other
#: group (options of different groups share a composition: the keys are the same, in fewer composes).
PRESETS = [
    [],
    *([e] for e in _options("experiment")),
    *(
        [o for o in options if o]
        for options in zip_longest(
            *(_options(g) for g in ("model", "dataset", "trainer", "logger", "budget", "protocol"))
        )
    ),
]


@pytest.fixture(scope="module")
def presets() -> dict[str, DictConfig]:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return {" ".join(o) or "default": compose("config", overrides=o) for o in PRESETS}


def _leaves(node, prefix: str = "") -> dict[str, object]:
    """Dotted key -> value of every leaf (lists and None are leaves; an empty section is one too)."""
    if isinstance(node, dict) and node:
        return {k: v for key, child in node.items() for k, v in _leaves(child, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): node}


def _listed(key: str) -> bool:
    return any(key == entry or key.startswith(entry + ".") for entry in UNHASHED_KEYS)


def _changed(value):
    """A different value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, list):
        return [*value, 0]
    if isinstance(value, dict):
        return {"added": 1}
    return 7 if value is None else f"{value}x"


def _with(cfg: DictConfig, key: str, value) -> DictConfig:
    copy = OmegaConf.create(OmegaConf.to_container(cfg))
    OmegaConf.update(copy, key, value, merge=False)
    return copy


def test_every_composed_key_is_hashed_or_listed_and_the_list_names_only_composed_keys(presets):
    composed, hashed = set(), set()
    for cfg in presets.values():
        # an empty `callbacks` section hashes as absent (run_folder.hashed_config), so every run made before
        # the section existed keeps its hash; a callback in it is hashed (tests/run/test_loggers_callbacks.py)
        composed |= set(_leaves(OmegaConf.to_container(cfg, resolve=True))) - {"callbacks"}
        hashed |= set(_leaves(hashed_config(cfg)))
    listed = {key for key in composed if _listed(key)}
    assert composed - hashed == listed, "a key is left out of the hash but not listed in UNHASHED_KEYS"
    assert not hashed & listed
    unused = [entry for entry in UNHASHED_KEYS if not any(k == entry or k.startswith(entry + ".") for k in composed)]
    assert not unused, f"UNHASHED_KEYS names keys no preset composes: {unused}"
    assert all(reason.strip() for reason in UNHASHED_KEYS.values())
    print(f"keys hashed or listed / keys composed: {len(hashed | listed)} / {len(composed)}")


def test_changing_any_key_changes_the_hash_unless_it_is_listed(presets):
    checked = set()
    for name, cfg in presets.items():
        before = config_hash(cfg)
        for key, value in _leaves(OmegaConf.to_container(cfg, resolve=True)).items():
            if key in checked:
                continue
            checked.add(key)
            changed = config_hash(_with(cfg, key, _changed(value))) != before
            verb = "changes" if changed else "keeps"
            assert changed != _listed(key), f"{name}: {key}={_changed(value)!r} {verb} the hash"


@pytest.mark.parametrize("override", ["validation_every=5", "validation_every=null", "concurrent_jobs=2"])
def test_validation_cadence_and_concurrency_change_the_hash(presets, override):
    key, value = override.split("=")
    cfg = presets["default"]
    assert config_hash(_with(cfg, key, None if value == "null" else float(value))) != config_hash(cfg)


def test_every_model_key_of_every_model_preset_changes_the_hash(presets):
    for name, cfg in presets.items():
        if "model=" not in name:
            continue
        before = config_hash(cfg)
        for key, value in _leaves(OmegaConf.to_container(cfg.model, resolve=True), "model.").items():
            if key.startswith("model.tuning."):  # how the config was found, listed in UNHASHED_KEYS
                assert config_hash(_with(cfg, key, _changed(value))) == before, f"{name}: {key}"
                continue
            assert config_hash(_with(cfg, key, _changed(value))) != before, f"{name}: {key}"


@pytest.mark.parametrize(
    "key, value",
    [
        ("results_dir", "/elsewhere"),
        ("sweep", "other"),
        ("progress", "lines"),
        ("logger", {"_target_": "pytorch_lightning.loggers.WandbLogger", "mode": "offline", "project": "p"}),
        ("trainer.log_every_n_steps", 1),
    ],
)
def test_keys_that_cannot_change_a_result_keep_the_hash(presets, key, value):
    cfg = presets["default"]
    assert config_hash(_with(cfg, key, value)) == config_hash(cfg)
