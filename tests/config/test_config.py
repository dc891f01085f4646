import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from bench.config.run_folder import config_hash, run_directory
from bench.config.schema import validate
from bench.core.errors import BenchError
from bench.data import ImageDataModule
from bench.models.base import GenerativeModule
from bench.models.build import build_model
from bench.run.accelerator import trainer_settings
from bench.run.loggers import make_logger
from tests.helpers import REPO_ROOT
from tests.helpers.configs import compose_config
from tests.helpers.fake_data_roots import fake_root_overrides

CONF = REPO_ROOT / "bench" / "conf"


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("model", _options("model"))
def test_every_model_config_builds_on_digits(model):
    cfg = compose_config([f"model={model}"])
    validate(cfg)
    dm = ImageDataModule(batch_size=cfg.model.batch_size, **cfg.dataset)
    module = build_model(cfg.model, dm.spec)
    assert isinstance(module, GenerativeModule) and module.likelihood in ("exact", "bound", "none")


@pytest.mark.parametrize("dataset", _options("dataset"))
def test_every_dataset_config_instantiates(dataset, tmp_path):
    cfg = compose_config([f"dataset={dataset}", f"results_dir={tmp_path}", *fake_root_overrides(dataset, tmp_path)])
    validate(cfg)
    dm = ImageDataModule(batch_size=8, **cfg.dataset)
    assert dm.spec.train_size + dm.spec.val_size + dm.spec.test_size == len(
        torch.cat([dm.split.train, dm.split.val, dm.split.test])
    )


@pytest.mark.parametrize("group", ["trainer", "logger", "budget", "protocol"])
def test_every_option_of_the_other_groups_composes(group, tmp_path):
    for option in _options(group):
        cfg = compose_config([f"{group}={option}", f"results_dir={tmp_path}"])
        validate(cfg)
        if group == "trainer" and cfg.trainer.accelerator == "cpu":
            kwargs = trainer_settings(cfg.trainer)  # the config less bench's own keys (early_stopping)
            assert isinstance(pl.Trainer(**kwargs, logger=False, enable_progress_bar=False), pl.Trainer)
        if group == "logger" and option != "wandb":
            logger = make_logger(cfg, tmp_path / "run")
            assert (logger is None) == (option == "none")


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_every_experiment_composes(experiment):
    validate(compose_config([f"experiment={experiment}"]))


#: Each experiment's training budget when the command line names none (seconds of training).
EXPERIMENT_SECONDS = {
    "compare": 180,
    "compare_conditional": 180,
    "compare_smoke": 10,
    "compare_mnist": 1200,
    "compare_fashion_mnist": 1200,
    "compare_cifar10": 2400,
    "tune": 180,
}


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_a_budget_on_the_command_line_wins_over_the_experiments(experiment):
    assert dict(compose_config([f"experiment={experiment}"]).budget) == {
        "kind": "time",
        "value": EXPERIMENT_SECONDS[experiment],
    }
    assert dict(compose_config([f"experiment={experiment}", "budget=smoke"]).budget) == {"kind": "time", "value": 10}
    assert dict(compose_config([f"experiment={experiment}", "budget=samples"]).budget) == {
        "kind": "samples",
        "value": 200000,
    }


def test_run_folder_derives_from_the_config_not_the_clock():
    a, b = compose_config(), compose_config()
    assert run_directory(a) == run_directory(b)
    assert config_hash(compose_config(["seed=1"])) != config_hash(a)
    assert config_hash(compose_config(["threads=2"])) != config_hash(a)
    # Paths, loggers and progress settings do not change results, so not the hash either.
    assert config_hash(compose_config(["results_dir=/elsewhere", "logger=none", "progress=lines"])) == config_hash(a)
    assert run_directory(a).name.startswith("cnn_decoder-digits-seed0__")


@pytest.mark.parametrize(
    "override, message",
    [
        ("budget.value=0", "budget.value=0.0: expected a positive number"),
        ("budget.kind=epochs", "budget.kind='epochs': expected one of time, samples"),
        ("model.batch_size=-4", "model.batch_size=-4: expected a positive integer"),
        ("threads=0", "threads=0: expected a positive integer"),
        ("seed=abc", "seed"),
        ("progress=fancy", "progress='fancy': expected one of auto, bar, lines, none"),
    ],
)
def test_invalid_values_name_the_key_and_the_expectation(override, message):
    with pytest.raises(BenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(compose_config([override]))


def _bench_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli.train", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_unknown_names_and_bad_values_get_one_line_without_traceback(tmp_path):
    unknown = _bench_train("model=nope", f"results_dir={tmp_path}", cwd=tmp_path)
    assert unknown.returncode != 0
    assert unknown.stderr.strip().startswith("error: model='nope': expected one of ")
    assert "cnn_decoder" in unknown.stderr and len(unknown.stderr.strip().splitlines()) == 1
    assert "Traceback" not in unknown.stderr
    bad = _bench_train("budget.value=-1", f"results_dir={tmp_path}", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: budget.value=-1.0: expected a positive number"
    assert not any(tmp_path.rglob("result.json"))
