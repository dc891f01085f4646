"""A user's own config groups in `conf/` (working directory, then the repository) are found by
name without `hydra.searchpath`, after bench's own and the plugins' configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.config.choices import CONF_DIR, check_group_choices, config_roots, user_config_folders
from bench.core.errors import BenchError
from tests.helpers import REPO_ROOT
from tests.helpers.configs import compose_config

TINY_GPT = "defaults:\n  - gpt\n  - _self_\n\nname: gpt_tiny\nnet:\n  d_model: 32\n"


def test_the_repositorys_example_experiment_is_found_by_name():
    check_group_choices(["experiment=gpt_vs_rnn"])
    cfg = compose_config(["experiment=gpt_vs_rnn"])
    assert cfg.sweep == "gpt_vs_rnn" and cfg.concurrent_jobs == 2  # extends the package's `compare`
    assert (REPO_ROOT / "conf").resolve() in user_config_folders()


def test_a_conf_folder_in_the_working_directory_is_found_after_the_packages(tmp_path, monkeypatch):
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "gpt_tiny.yaml").write_text(TINY_GPT)
    (tmp_path / "conf" / "model" / "gpt.yaml").write_text(TINY_GPT.replace("gpt_tiny", "gpt"))  # shadowed
    monkeypatch.chdir(tmp_path)
    roots = config_roots([])
    assert roots[0] == Path(CONF_DIR) and (tmp_path / "conf").resolve() in roots[1:]
    check_group_choices(["model=gpt_tiny"])  # its family comes from the config it extends
    tiny = compose_config(["model=gpt_tiny"]).model
    assert (tiny.name, tiny.family, tiny.net.d_model, tiny.net.layers) == ("gpt_tiny", "gpt", 32, 2)
    assert compose_config(["model=gpt"]).model.net.d_model == 128  # the package's own config wins


def test_a_model_config_that_extends_another_is_checked_through_it(tmp_path, monkeypatch):
    check_group_choices(["model=gpt_mnist,rnn_cifar10"])  # the dataset-sized presets set no family themselves
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "orphan.yaml").write_text("name: orphan\nbatch_size: 8\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BenchError, match=r"orphan.yaml: family None is not registered"):
        check_group_choices(["model=orphan"])
