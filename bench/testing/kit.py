"""Which contract checks apply to which model, and one call that runs exactly those.

A check applies by likelihood kind (`exact`, `bound`, `none`), training style (`gradient`,
`closed_form`, `manual`) and, for the conditional checks, by the model being conditional (and
supporting guidance); `check_model` builds a fresh model for each applicable check on the first
tiny spec it builds on, and `check_model_config` does the same from a model config name
(built-in or plugin) — and again in conditional mode, conditional checks only, for families that
declare `supports_conditional` — and adds a short `bench-train` run that must write a completed record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.config.compose import compose_all
from bench.core.errors import BenchError
from bench.data.spec import DatasetSpec
from bench.models.base import GenerativeModule, labels_for
from bench.models.build import build_model
from bench.models.registry import get_family
from bench.pipeline.train_task import train
from bench.testing import checks

Build = Callable[[DatasetSpec], GenerativeModule]


def _sample_contract(build: Build, spec: DatasetSpec) -> None:
    model = _fitted(build, spec)
    # an untrained GAN may quantize every latent to one image; sampled likelihoods never do
    checks.check_sample_contract(model, expect_variety=model.likelihood != "none")


def _round_trip(build: Build, spec: DatasetSpec) -> None:
    checks.check_checkpoint_round_trip(_fitted(build, spec), _seeded(build, spec, seed=1))


#: The spec of the variety check, when the model builds on it: 256 levels keep an untrained
#: model's small differences between samples (on 2 or 3 levels they may all round to one image).
VARIETY_SHAPE = (1, 4, 4, 256)


def _variety(build: Build, spec: DatasetSpec, conditional: bool = False) -> None:
    try:
        varied = checks.tiny_spec(*VARIETY_SHAPE, num_classes=spec.num_classes)
        model = _seeded(build, varied)
        spec = varied
    except BenchError:  # a model that cannot take 256 levels is checked on the kit's own tiny spec
        model = _seeded(build, spec)
    batch = checks.varied_batch(spec)
    if checks.training_style(model) == "closed_form":  # a copier of three prototypes could draw only three
        checks.fit_briefly(model, batch)
    labels = labels_for(len(batch), model.num_classes) if conditional else None
    checks.check_sample_variety(model, len(batch), labels=labels)


def _memorizes(build: Build, spec: DatasetSpec) -> None:
    checks.check_memorizes_one_image(_seeded(build, spec), checks.tiny_batch(spec, n=1))


@dataclass(frozen=True)
class Check:
    name: str
    applies_to: str  # the models it applies to, in words
    applies: Callable[[GenerativeModule], bool]
    run: Callable[[Build, DatasetSpec], None]


def _likelihood(*kinds: str) -> Callable[[GenerativeModule], bool]:
    return lambda model: model.likelihood in kinds


def _conditional(*kinds: str) -> Callable[[GenerativeModule], bool]:
    return lambda model: model.conditional and model.likelihood in kinds


CONDITIONAL_CHECKS: tuple[Check, ...] = (
    Check(
        "conditional: sample contract with labels",
        "conditional models",
        lambda m: m.conditional,
        lambda b, s: checks.check_conditional_sample_contract(_fitted(b, s)),
    ),
    Check(
        "conditional: samples vary with the generator",
        "conditional models",
        lambda m: m.conditional,
        lambda b, s: _variety(b, s, conditional=True),
    ),
    Check(
        "conditional: samples follow their labels",
        "conditional models, training style 'closed_form' or 'gradient' (likelihood 'exact' or 'bound')",
        lambda m: (
            m.conditional
            and (
                checks.training_style(m) == "closed_form"
                or (checks.training_style(m) == "gradient" and m.likelihood != "none")
            )
        ),
        lambda b, s: checks.check_labels_honoured(_seeded(b, s)),
    ),
    Check(
        "conditional: likelihood sums to 1 per label",
        "conditional models, likelihood 'exact'",
        _conditional("exact"),
        lambda b, s: checks.check_conditional_likelihood_normalized(_seeded(b, s)),
    ),
    Check(
        "conditional: likelihood sums to at most 1 per label",
        "conditional models, likelihood 'bound'",
        _conditional("bound"),
        lambda b, s: checks.check_conditional_likelihood_normalized(_seeded(b, s)),
    ),
    Check(
        "conditional: samples follow the likelihood per label",
        "conditional models, likelihood 'exact'",
        _conditional("exact"),
        lambda b, s: checks.check_conditional_samples_follow_likelihood(_seeded(b, s)),
    ),
    Check(
        "conditional: guidance 0 equals plain sampling",
        "conditional models with supports_guidance",
        lambda m: m.conditional and m.supports_guidance,
        lambda b, s: checks.check_guidance_zero_is_plain_sampling(_fitted(b, s)),
    ),
)

CHECKS: tuple[Check, ...] = (
    Check("sample contract", "every model", lambda m: True, _sample_contract),
    Check("checkpoint round trip", "every model", lambda m: True, _round_trip),
    Check("samples vary with the generator", "every model", lambda m: True, _variety),
    Check(
        "likelihood sums to 1",
        "likelihood 'exact'",
        _likelihood("exact"),
        lambda b, s: checks.check_likelihood_normalized(_seeded(b, s)),
    ),
    Check(
        "likelihood sums to at most 1",
        "likelihood 'bound'",
        _likelihood("bound"),
        lambda b, s: checks.check_likelihood_normalized(_seeded(b, s)),
    ),
    Check(
        "bits/dim finite and below uniform after a few steps",
        "likelihood 'exact' or 'bound'",
        _likelihood("exact", "bound"),
        lambda b, s: checks.check_bpd_below_uniform(_seeded(b, s)),
    ),
    Check(
        "samples follow the likelihood",
        "likelihood 'exact'",
        _likelihood("exact"),
        lambda b, s: checks.check_samples_follow_likelihood(_seeded(b, s)),
    ),
    Check(
        "training loss falls",
        "training style 'gradient'",
        lambda m: checks.training_style(m) == "gradient",
        lambda b, s: checks.check_loss_falls(_seeded(b, s)),
    ),
    Check(
        "memorizes one image",
        "likelihood 'exact', training style 'gradient'",
        lambda m: m.likelihood == "exact" and checks.training_style(m) == "gradient",
        _memorizes,
    ),
    *CONDITIONAL_CHECKS,
)


def _seeded(build: Build, spec: DatasetSpec, seed: int = 0) -> GenerativeModule:
    torch.manual_seed(seed)
    return build(spec)


def _fitted(build: Build, spec: DatasetSpec) -> GenerativeModule:
    """A fresh model; closed-form models are fitted first (a copier has nothing to sample before)."""
    model = _seeded(build, spec)
    if checks.training_style(model) == "closed_form":
        checks.fit_briefly(model, checks.tiny_batch(spec))
    return model


def tiny_spec_for(build: Build) -> DatasetSpec:
    """The first of the kit's tiny specs the model builds on: unlabelled ones first, then the
    same shapes with `CONDITIONAL_CLASSES` classes (a conditional model needs two or more)."""
    problems = []
    for classes in (0, checks.CONDITIONAL_CLASSES):
        for shape in checks.TINY_SPECS:
            spec = checks.tiny_spec(*shape, num_classes=classes)
            try:
                build(spec)
                return spec
            except BenchError as err:  # e.g. sides must be divisible by 4
                problems.append(str(err))
    raise AssertionError(
        f"the model builds on none of the tiny specs {checks.TINY_SPECS} (with 0 or "
        f"{checks.CONDITIONAL_CLASSES} classes): {'; '.join(problems)}"
    )


def applicable_checks(model: GenerativeModule, among: Sequence[Check] = CHECKS) -> list[Check]:
    return [check for check in among if check.applies(model)]


def check_model(build: Build, spec: DatasetSpec | None = None, among: Sequence[Check] = CHECKS) -> list[str]:
    """Run every check (of `among`) that applies to the model `build(spec)` returns; returns their names.

    `build` makes a fresh model for a `DatasetSpec`; `spec` defaults to the first tiny spec it
    builds on. A conditional model gets the conditional checks too. A failure names the check
    and says what was reached.
    """
    spec = spec or tiny_spec_for(build)
    ran = []
    for check in applicable_checks(build(spec), among):
        try:
            check.run(build, spec)
        except AssertionError as err:
            raise AssertionError(f"contract check '{check.name}' ({check.applies_to}) failed: {err}") from None
        ran.append(check.name)
    return ran


def compose_model(name: str, overrides: Sequence[str] = ()):
    """The run config `bench-train model=<name> [overrides]` composes (plugin configs included)."""
    (cfg,) = compose_all([[f"model={name}", *overrides]])
    return cfg


def check_bench_train(name: str, results_dir: Path, overrides: Sequence[str] = ()) -> dict:
    """`bench-train model=<name> budget=smoke` (3 s, procedural data) writes a completed record."""
    cfg = compose_model(
        name,
        [
            "dataset=procedural",
            "budget=smoke",
            "budget.value=3",
            "logger=none",
            "progress=none",
            "threads=1",
            f"results_dir={results_dir}",
            *overrides,
        ],
    )
    record = train(cfg)
    assert record is not None and record["status"] == "completed", (
        f"bench-train model={name} budget=smoke did not complete: "
        f"{(record or {}).get('status')}: {(record or {}).get('message')}"
    )
    return record


def check_network_declared(model_cfg) -> None:
    """The config's network is one its family declares (`GenerativeModule.networks`): else every
    re-evaluation of its runs (`bench-eval --run`, `bench-time`, the sweep's timing pass) refuses them."""
    target = (model_cfg.get("net") or {}).get("_target_")
    declared = get_family(model_cfg.family).networks
    if target is not None and target not in declared:
        raise AssertionError(
            f"network declared: model.net._target_={target!r} is not among the {model_cfg.family!r} "
            f"family's networks {tuple(declared)}; add it to the class attribute `networks`, or "
            "re-evaluating this model's runs is refused"
        )


def check_model_config(name: str, results_dir: Path | None = None) -> list[str]:
    """The one line for a plugin's tests: every applicable check on model config `name`, then the
    conditional checks on it built with `model.conditional=true` when its family declares
    `supports_conditional`, plus a smoke `bench-train` run into `results_dir` when one is given.
    Returns the checks run."""
    model_cfg = compose_model(name).model
    check_network_declared(model_cfg)
    ran = ["network declared", *check_model(lambda spec: build_model(model_cfg, spec))]
    if get_family(model_cfg.family).supports_conditional and not model_cfg.conditional:
        conditional_cfg = compose_model(name, ["model.conditional=true"]).model
        ran += check_model(lambda spec: build_model(conditional_cfg, spec), among=CONDITIONAL_CHECKS)
    if results_dir is not None:
        check_bench_train(name, Path(results_dir))
        ran.append("bench-train smoke run")
    return ran
