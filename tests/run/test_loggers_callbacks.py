"""Loggers and callbacks come from `_target_` configs: a new one is a YAML file, and a wrong one
is one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytorch_lightning import Callback
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.loggers import CSVLogger, WandbLogger

from bench.config.run_folder import config_hash
from bench.config.schema import validate
from bench.core.errors import BenchError
from bench.pipeline.train_task import train
from bench.run.callbacks import make_callbacks
from bench.run.loggers import make_logger
from bench.run.metrics_log import ResumableCSVLogger
from tests.helpers.configs import compose_config, tiny_overrides


def test_the_csv_logger_writes_metrics_csv_into_the_run_folder_itself(tmp_path):
    run = tmp_path / "gan-digits-seed0__0123abcd"
    logger = make_logger(compose_config(["logger=csv"]), run)
    assert isinstance(logger, ResumableCSVLogger)
    assert Path(logger.log_dir) == run


def test_the_wandb_logger_is_offline_named_after_the_run_and_grouped_by_the_sweep(tmp_path):
    cfg = compose_config(["logger=wandb", "sweep=ablation", "seed=7"])
    logger = make_logger(cfg, tmp_path / "gan-digits-seed7__0123abcd")
    assert isinstance(logger, WandbLogger)
    given = logger._wandb_init
    assert (given["mode"], given["name"], given["group"]) == ("offline", "gan-digits-seed7__0123abcd", "ablation")
    assert given["config"]["model"]["net"]["_target_"] == cfg.model.net._target_  # data, never built
    assert given["config"]["seed"] == 7 and given["dir"] == str(tmp_path / "gan-digits-seed7__0123abcd")


def test_any_lightning_logger_class_is_one_config_and_logger_none_is_no_logger(tmp_path):
    cfg = compose_config(["logger=none"])
    assert make_logger(cfg, tmp_path) is None
    cfg.logger = {"_target_": "pytorch_lightning.loggers.CSVLogger", "save_dir": "???", "name": "curves"}
    validate(cfg)
    logger = make_logger(cfg, tmp_path)
    assert type(logger) is CSVLogger and Path(logger.log_dir).parent == tmp_path / "curves"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("collections.OrderedDict", "logger._target_=collections.OrderedDict: expected a pytorch_lightning Logger"),
        ("no_such_module.Logger", "logger._target_=no_such_module.Logger: could not build it"),
    ],
)
def test_a_logger_target_that_is_no_logger_is_one_line(tmp_path, target, expected):
    cfg = compose_config([f"logger._target_={target}"])
    with pytest.raises(BenchError, match="^" + expected.replace(".", r"\.").replace("(", r"\(")):
        make_logger(cfg, tmp_path)


def test_a_logger_without_a_target_is_refused_before_the_run(tmp_path):
    with pytest.raises(BenchError, match=r"^logger\._target_='paper': expected the dotted path"):
        validate(compose_config(["logger._target_=paper"]))


def test_a_logger_key_left_to_the_run_that_the_run_does_not_fill_is_refused_before_the_run():
    with pytest.raises(
        BenchError, match=r"^logger\.project='\?\?\?': expected a value: the run fills in only save_dir"
    ):
        validate(compose_config(["logger=wandb", "logger.project=???"]))


def test_a_callback_from_the_config_is_built_and_is_part_of_the_hash():
    plain = compose_config()
    with_callback = compose_config(
        [
            "+callbacks.lr._target_=pytorch_lightning.callbacks.LearningRateMonitor",
            "+callbacks.lr.logging_interval=step",
        ]
    )
    (callback,) = make_callbacks(with_callback)
    assert isinstance(callback, LearningRateMonitor) and callback.logging_interval == "step"
    assert make_callbacks(plain) == []
    assert config_hash(with_callback) != config_hash(plain)
    assert config_hash(compose_config(["~callbacks"])) == config_hash(plain)  # empty hashes as absent


def test_a_callback_target_that_is_no_callback_is_one_line():
    cfg = compose_config(["+callbacks.odd._target_=collections.OrderedDict"])
    with pytest.raises(BenchError, match=r"^callbacks\.odd\._target_=collections\.OrderedDict: expected a "):
        make_callbacks(cfg)


class CountsTrainingSteps(Callback):
    """A user's callback: counts the batches it sees."""

    seen = 0

    def on_train_batch_end(self, *args, **kwargs) -> None:
        CountsTrainingSteps.seen += 1


def test_a_users_callback_runs_during_training(tmp_path):
    CountsTrainingSteps.seen = 0
    cfg = compose_config(
        tiny_overrides(
            tmp_path,
            "model=independent_pixels",
            "budget.value=256",
            f"+callbacks.count._target_={__name__}.CountsTrainingSteps",
        )
    )
    record = train(cfg)
    assert record["status"] == "completed"
    assert CountsTrainingSteps.seen == 0  # a closed-form baseline never trains: nothing to count
    cfg = compose_config(
        tiny_overrides(
            tmp_path,
            "model=cnn_decoder",
            "budget.value=256",
            f"+callbacks.count._target_={__name__}.CountsTrainingSteps",
        )
    )
    record = train(cfg)
    assert record["status"] == "completed"
    assert CountsTrainingSteps.seen == record["training"]["optimizer_steps"] > 0
