"""Plugins install and run like built-ins: found by name, configs on Hydra's search path,
listed by `bench-models`, trained by `bench-train`, shown in the report with their package;
broken plugins cost one warning each and leave every other model working."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from bench.config import plugins
from bench.config.choices import CONF_DIR, check_group_choices
from bench.core.errors import BenchError
from bench.models import registry
from tests.helpers import REPO_ROOT
from tests.helpers.configs import compose_config
from tests.helpers.plugin_packages import pip_install, write_distribution, write_plugin


def _on_path(folder):
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    plugins._warned.clear()


def _off_path(folder):
    sys.path.remove(str(folder))
    for name in [m for m in sys.modules if m == "toyplug" or m.startswith("toyplug.")]:
        del sys.modules[name]
    plugins._warned.clear()


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """The toy plugin pip-installed into a private folder on sys.path."""
    root = tmp_path_factory.mktemp("plugin")
    site = root / "site"
    pip_install(write_plugin(root / "src"), site)
    _on_path(site)
    yield site
    _off_path(site)


@pytest.fixture
def broken_site(tmp_path):
    """A folder on sys.path for hand-written broken distributions."""
    _on_path(tmp_path)
    yield tmp_path
    _off_path(tmp_path)


def test_bench_models_lists_plugin_and_built_ins(plugin_site, capsys):
    from bench.cli.models import main

    assert main([]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert {"cnn_decoder", "gan", "rnn", "gpt", "independent_pixels", "copier", "toy"} <= set(lines)
    # free logits over 17 levels for each of the 8x8 digits pixels
    assert lines["toy"].split()[1:] == ["toy", "exact", "toyplug", "0.3.0", f"{8 * 8 * 17:,}"]
    assert lines["rnn"].split()[2:4] == ["exact", "built-in"]


def test_plugin_config_is_on_the_search_path_for_bench_only(plugin_site, tmp_path):
    assert compose_config(["model=toy"]).model.family == "toy"
    from bench.cli.compare import with_defaults
    from bench.config.compose import compose_all, job_overrides

    assert compose_all([["model=toy"]])[0].model.name == "toy"  # bench-compare agrees
    _, jobs = job_overrides(with_defaults(["model=rnn,toy", "budget=smoke"]))
    assert sorted(o for job in jobs for o in job if o.startswith("model=")) == ["model=rnn", "model=toy"]
    (tmp_path / "config.yaml").write_text("x: 1\n")
    for folder, expected in ((CONF_DIR, True), (str(tmp_path), False)):
        with initialize_config_dir(config_dir=folder, version_base="1.3"):
            providers = [s.provider for s in GlobalHydra.instance().config_loader().get_sources()]
        assert ("bench-plugin:toyplug" in providers) is expected, providers


def test_unknown_model_lists_every_model_plugins_included(plugin_site):
    with pytest.raises(BenchError) as err:
        check_group_choices(["model=nope"])
    message = str(err.value)
    assert "\n" not in message and message.startswith("model='nope': expected one of")
    assert all(name in message for name in ("toy", "rnn", "gpt", "gan", "cnn_decoder", "copier"))


def test_model_config_with_an_unregistered_family_names_file_and_families(plugin_site, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "ghosty.yaml").write_text("name: ghosty\nfamily: ghost\nbatch_size: 8\n")
    with pytest.raises(BenchError) as err:
        check_group_choices(["model=ghosty", f"hydra.searchpath=[file://{tmp_path}]"])
    message = str(err.value)
    assert str(tmp_path / "model" / "ghosty.yaml") in message and "'ghost' is not registered" in message
    assert "toy" in message and "rnn" in message and "\n" not in message
    check_group_choices(["model=toy,rnn", f"hydra.searchpath=[file://{tmp_path}]"])  # the others pass


def test_plugin_trains_through_bench_train_and_shows_in_the_report(plugin_site, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.cli.train",
            "model=toy",
            f"results_dir={tmp_path}",
            "dataset=procedural",
            "budget=samples",
            "budget.value=512",
            "progress=none",
            "logger=none",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_site), str(REPO_ROOT)])},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (record_file,) = tmp_path.rglob("result.json")
    record = json.loads(record_file.read_text())
    assert record["status"] == "completed" and record["family"] == "toy"
    source = record["environment"]["model_source"]
    assert (source["package"], source["version"], source["builtin"]) == ("toyplug", "0.3.0", False)
    from bench.report.render import build_report

    report = build_report(tmp_path).markdown.read_text()
    assert "toy (toyplug 0.3.0)" in report and "| exact |" in report


def _assert_built_ins_work():
    assert {"rnn", "gpt", "gan", "cnn_decoder"} <= set(registry.usable_families())
    check_group_choices(["model=rnn"])
    assert compose_config(["model=rnn"]).model.family == "rnn"


@pytest.mark.parametrize(
    "points, expected",
    [
        (
            {"bench.models": {"broken": "no_such_module_xyz:Model"}},
            "plugin broken-plug 1.0 (family 'broken'): no_such_module_xyz:Model failed to import: ModuleNotFoundError",
        ),
        (
            {"bench.models": {"notgm": "collections:OrderedDict"}},
            "plugin broken-plug 1.0 (family 'notgm'): collections:OrderedDict is not a GenerativeModule subclass",
        ),
        (
            {"bench.models": {"renamed": "bench.models.rnn:PixelRNN"}},
            "plugin broken-plug 1.0 (family 'renamed'): bench.models.rnn:PixelRNN sets family = 'rnn'; expected 'renamed', "
            "the name it is registered under",
        ),
        (
            {"bench.models": {"rnn": "collections:OrderedDict"}},
            "plugin broken-plug 1.0: family 'rnn' clashes with a built-in family; the built-in is used",
        ),
        (
            {"bench.configs": {"broken-plug": "no_such_package_xyz.conf"}},
            "plugin broken-plug 1.0: its config package 'no_such_package_xyz.conf' (bench.configs entry point "
            "'broken-plug') was not found",
        ),
    ],
)
def test_broken_plugin_warns_once_and_built_ins_still_work(broken_site, capsys, points, expected):
    write_distribution(broken_site, "broken-plug", points)
    _assert_built_ins_work()
    plugins.config_packages()
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: {expected}"), warnings
    assert registry.get_family("rnn").__name__ == "PixelRNN"


def test_built_in_records_name_bench_as_their_source():
    from bench.report.aggregate import family_label
    from bench.run.environment import model_source

    source = model_source("rnn")
    assert source["package"] == "bench" and source["builtin"] is True and source["family"] == "rnn"
    assert family_label({"family": "rnn", "environment": {"model_source": source}}) == "rnn"


def test_report_label_names_plugin_package_version_and_revision():
    from bench.report.aggregate import family_label

    source = {
        "family": "toy",
        "package": "toyplug",
        "version": "0.3.0",
        "builtin": False,
        "git_revision": "0123456789abcdef+dirty",
    }
    assert family_label({"family": "toy", "environment": {"model_source": source}}) == "toy (toyplug 0.3.0, 0123456789)"
    assert family_label({"family": "toy"}) == "toy"  # records written before provenance existed


def test_user_config_folders_count_as_choices_file_and_pkg(plugin_site, tmp_path):
    folder = tmp_path / "user_confs" / "model"
    folder.mkdir(parents=True)
    (folder / "mine.yaml").write_text("name: mine\nfamily: toy\nbatch_size: 8\n")
    check_group_choices(["model=mine", f"hydra.searchpath=[file://{tmp_path / 'user_confs'}]"])
    sys.path.insert(0, str(tmp_path))
    try:
        check_group_choices(["model=mine", "hydra.searchpath=[pkg://user_confs]"])
    finally:
        sys.path.remove(str(tmp_path))
    with pytest.raises(BenchError, match="model='mine': expected one of"):
        check_group_choices(["model=mine"])
