"""Metrics of conditional runs (protocol v3) on real digits, with tiny models of known answers, and
how records of conditional runs group and render."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from bench.config.protocol import Protocol
from bench.core.errors import BenchError
from bench.core.records import RECORD_NAME, write_record
from bench.core.schema import CONDITIONAL_KEYS, METRIC_BY_KEY
from bench.evaluate.conditional import class_balanced_draw, conditional_scores
from bench.evaluate.image_files import CLASS_GRID_NAME
from bench.evaluate.reference_set import embed, reference_for
from bench.evaluate.score import evaluate_module
from bench.models.base import labels_for
from bench.models.baselines import IndependentPixels
from bench.report.collect import collect
from bench.report.render import build_report
from tests.helpers.conditional_models import ClassCopier, ClassPixels, GuidedClassCopier
from tests.helpers.configs import compose_config
from tests.helpers.report_records import make_run

# small enough for the fast suite: 20 samples per class against ~45 test images per class
PROTOCOL = {"n_generated": 200, "floor_draws": 2, "kid_subsets": 10, "guidance_sweep": [0, 0.5, 2]}


@pytest.fixture(scope="module")
def evaluated(digits, tmp_path_factory):
    """Evaluation results (and run folders) of the tiny models, keyed by name."""
    models = {
        "class_copier": ClassCopier(digits.spec, digits.train_images, digits.train_labels),
        "label_ignorer": ClassCopier(digits.spec, digits.train_images, digits.train_labels, honour=0.0),
        "guided": GuidedClassCopier(digits.spec, digits.train_images, digits.train_labels, honour=0.2),
        "class_pixels": ClassPixels(digits.spec, digits.train_images, digits.train_labels),
        "pixels": IndependentPixels(None, digits.spec),
    }
    models["pixels"].fit_closed_form(digits.train_images)
    results = {}
    for name, module in models.items():
        run_dir = tmp_path_factory.mktemp(name)
        results[name] = (evaluate_module(module, digits, PROTOCOL, None, run_dir, seed=0), run_dir)
    return results


def test_accuracy_is_one_for_a_class_copier_and_chance_for_a_label_ignoring_model(evaluated):
    copier, run_dir = evaluated["class_copier"]
    assert copier["conditional"] is True and copier["metrics"]["accuracy"] >= 0.99
    ignorer = evaluated["label_ignorer"][0]["metrics"]["accuracy"]
    assert abs(ignorer - 0.1) < 0.06  # 1/K for K = 10 classes
    # the scored samples asked for labels spread evenly over the classes, kept beside the images
    with np.load(run_dir / "samples.npz") as saved:
        assert np.array_equal(saved["labels"], labels_for(200, 10).numpy())
    per_class = copier["per_class"]
    assert per_class["n_generated"] == [20] * 10 and len(per_class["kid_mean"]) == 10
    assert copier["metrics"]["class_kid_worst"] == max(per_class["kid_mean"])
    assert (run_dir / CLASS_GRID_NAME).read_bytes().startswith(b"\x89PNG")
    # the data floor draws real training images evenly by class: the classifier knows them
    floor = copier["data_floor"]
    assert floor["accuracy"] >= 0.99 and all(d["accuracy"] is not None for d in floor["draws"])
    assert copier["metrics"]["class_kid_mean"] < evaluated["label_ignorer"][0]["metrics"]["class_kid_mean"]


def test_unconditional_runs_keep_their_record_shape(evaluated):
    result, run_dir = evaluated["pixels"]
    assert result["conditional"] is False and "per_class" not in result
    assert all(result["metrics"][k] is None for k in ("accuracy", "class_kid_mean", "bits_per_dim_given_label"))
    assert result["data_floor"]["accuracy"] is None and not (run_dir / CLASS_GRID_NAME).exists()
    assert result["guidance_sweep"]["applies"] is False and "unconditional" in result["guidance_sweep"]["reason"]
    with np.load(run_dir / "samples.npz") as saved:
        assert "labels" not in saved.files


def test_per_class_kid_is_near_zero_for_real_class_images_and_large_for_mismatched_classes(digits):
    ref = reference_for(digits, Protocol(**PROTOCOL))
    # real training images of each class (not the test images themselves: KID's unbiased estimate
    # of a set against the very same images is negative, since no pair is independent)
    images, labels = class_balanced_draw(ref, 500, seed=0)
    feats, logits = embed(ref, images)
    matched, _ = conditional_scores(ref, feats, logits, labels, seed=0)
    shuffled, _ = conditional_scores(ref, feats, logits, (labels + 1) % 10, seed=0)
    assert abs(matched["class_kid_mean"]) < 0.1 and matched["accuracy"] > 0.95
    assert shuffled["class_kid_mean"] > 1.0 and shuffled["class_kid_worst"] >= shuffled["class_kid_mean"]
    assert shuffled["accuracy"] < 0.05


def test_guidance_sweep_records_one_entry_per_weight(evaluated):
    result = evaluated["guided"][0]
    sweep = result["guidance_sweep"]
    assert sweep["applies"] is True and [p["guidance"] for p in sweep["points"]] == [0.0, 0.5, 2.0]
    assert all(set(p) == {"guidance", "accuracy", "fid", "recall"} for p in sweep["points"])
    # w = 0 is the scored draw itself; guidance here raises the share of the asked class
    assert sweep["points"][0]["accuracy"] == result["metrics"]["accuracy"]
    assert sweep["points"][0]["fid"] == pytest.approx(result["metrics"]["fid"])
    assert sweep["points"][2]["accuracy"] > sweep["points"][0]["accuracy"] + 0.3
    # a conditional model without guidance says the sweep does not apply to it
    other = evaluated["class_copier"][0]["guidance_sweep"]
    assert other["applies"] is False and other["points"] == [] and "guidance" in other["reason"]


def test_bits_per_dim_given_the_label_beside_the_marginal(evaluated):
    metrics = evaluated["class_pixels"][0]["metrics"]
    assert metrics["bits_per_dim_kind"] == "exact"
    # -log2 p(x | y) with the true label is below the marginal over a uniform class prior here,
    # and the marginal is at most log2(K) / dims above it for every image
    assert metrics["bits_per_dim_given_label"] < metrics["bits_per_dim"]
    assert metrics["bits_per_dim"] - metrics["bits_per_dim_given_label"] <= np.log2(10) / 64 + 1e-9
    assert evaluated["class_copier"][0]["metrics"]["bits_per_dim_given_label"] is None  # no likelihood


@pytest.mark.parametrize("value", ["1", "[0,-1]", "[0,abc]", "'0,1'"])
def test_bad_guidance_sweep_values_name_the_key(value):
    from bench.config.schema import validate

    with pytest.raises(BenchError, match=r"^protocol\.guidance_sweep=.*expected .*guidance weights w >= 0"):
        validate(compose_config([f"protocol.guidance_sweep={value}"]))


def _conditional_record(root, model, seed, result, run_dir, sha):
    """A report-test record carrying a real conditional evaluation (metrics, floor, sweep, grids)."""
    folder = make_run(root, model, seed, protocol_version=3, extractor_sha=sha, n_generated=200)
    record = json.loads((folder / RECORD_NAME).read_text())
    record.update(
        {k: result[k] for k in ("metrics", "data_floor", "conditional", "per_class", "guidance_sweep") if k in result}
    )
    record["paths"]["samples_by_class"] = CLASS_GRID_NAME
    shutil.copy(run_dir / CLASS_GRID_NAME, folder / CLASS_GRID_NAME)
    write_record(folder, record)
    return folder


def test_conditional_and_unconditional_records_never_share_a_group(tmp_path, evaluated):
    sha = "cd" * 32
    make_run(tmp_path, "pixels", 0, protocol_version=3, extractor_sha=sha, n_generated=200)
    _conditional_record(tmp_path, "guided", 0, *evaluated["guided"], sha)
    make_run(tmp_path, "pixels", 1, protocol_version=2, extractor_sha=sha, n_generated=200, floor_draws=[5, 6])
    groups = collect(tmp_path).groups
    assert len(groups) == 3
    assert sorted((k.protocol_version, k.conditional) for k in groups) == [(2, False), (3, False), (3, True)]
    assert [k.title() for k in groups if k.conditional][0].endswith("· conditional")


def test_a_conditional_report_shows_accuracy_class_grids_and_the_guidance_sweep(tmp_path, evaluated):
    sha = "cd" * 32
    for seed in (0, 1):
        _conditional_record(tmp_path, "guided", seed, *evaluated["guided"], sha)
        _conditional_record(tmp_path, "class_copier", seed, *evaluated["class_copier"], sha)
    files = build_report(tmp_path)
    markdown, html = files.markdown.read_text(), files.html.read_text()
    for key in CONDITIONAL_KEYS:
        assert METRIC_BY_KEY[key].label in markdown and METRIC_BY_KEY[key].label in html
    assert "### Conditional generation" in markdown and "data floor (real train images, even by class)" in markdown
    assert "Ranking by accuracy of conditional samples" in markdown
    assert "### Samples by class" in markdown and len(list(tmp_path.glob("group1_classes_*.png"))) == 2
    assert html.count('class="grid classgrid"') == 2
    assert "### Guidance sweep" in markdown and "does not apply: the class_copier family" in markdown
    assert (tmp_path / "group1_guidance.png").read_bytes().startswith(b"\x89PNG")
    assert "Accuracy vs FID under classifier-free guidance" in html and html.count("data:image/png") >= 5


def test_v2_and_unconditional_reports_render_without_conditional_sections(tmp_path):
    for seed in (0, 1):
        make_run(tmp_path, "gpt", seed, protocol_version=2, floor_draws=[5.0, 6.0, 7.0])
        make_run(tmp_path, "gan", seed, protocol_version=3, bpd=None, floor_draws=[5.0, 6.0, 7.0])
    files = build_report(tmp_path)
    markdown, html = files.markdown.read_text(), files.html.read_text()
    assert files.groups == 2 and "protocol v2" in markdown and "protocol v3" in markdown
    for text in (
        "Conditional generation",
        "Guidance sweep",
        "Samples by class",
        "accuracy of conditional samples",
        "· conditional",
    ):
        assert text not in markdown and text not in html
    assert "### Sample quality" in markdown and html.count('class="grid"') == 2  # one grid per model and group


def test_compare_conditional_is_compare_with_every_model_conditional():
    from bench.config.compose import compose_all, job_overrides

    _, plain = job_overrides(["experiment=compare"])
    _, jobs = job_overrides(["experiment=compare_conditional"])
    assert [j[:2] for j in jobs] == [j[:2] for j in plain]  # the same models and seeds
    for cfg in compose_all(jobs[::3]):  # every model once
        assert cfg.model.conditional is True and cfg.sweep == "compare_conditional"
        assert (cfg.budget.kind, cfg.budget.value) == ("time", 180)
        assert list(cfg.protocol.guidance_sweep) == [0, 0.5, 1, 2]
        assert cfg.model.module.label_dropout == (0.1 if cfg.model.family in ("gpt", "rnn") else 0.0)
