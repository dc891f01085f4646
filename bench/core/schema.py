"""Every published number declared once: its key, label, unit, better direction and format.

Evaluation writes these keys, the report reads them by their `path`, the templates show their
`label`, and tests check records against them; adding a metric is an edit here (plus the code
that computes it). The run record's sections are declared below as `TypedDict`s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypedDict


@dataclass(frozen=True)
class MetricSpec:
    """One number of the run record and how the report shows it."""

    key: str
    label: str
    section: str  # the record section holding it: "metrics", "training" or "timing"
    unit: str = ""
    better: str = ""  # "lower", "higher" or "" (a cost or a description)
    floor: bool = False  # the data floor (real training images) has it too
    table: str = ""  # the report table showing it: "quality", "cost", "conditional" or "" (record only)
    integer: bool = False  # formatted without decimals (counts)

    @property
    def path(self) -> tuple[str, str]:
        return (self.section, self.key)


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("fid", "FID (classifier features)", "metrics", better="lower", floor=True, table="quality"),
    MetricSpec(
        "kid_mean", "KID (standardized classifier features)", "metrics", better="lower", floor=True, table="quality"
    ),
    MetricSpec("kid_std", "KID std over subsets", "metrics", floor=True),
    # protocol v6: FID's within-run sampling sd, a grouped jackknife over the generated and the reference
    # images (bench.evaluate.metrics.fid_jackknife); each floor draw has its own, for the floor's interval
    MetricSpec("fid_sampling_std", "FID sampling sd (jackknife)", "metrics", floor=True),
    MetricSpec("inception_score", "IS (classifier logits)", "metrics", better="higher", floor=True, table="quality"),
    MetricSpec("precision", "precision", "metrics", better="higher", floor=True, table="quality"),
    MetricSpec("recall", "recall", "metrics", better="higher", floor=True, table="quality"),
    MetricSpec("density", "density", "metrics", better="higher", floor=True, table="quality"),
    MetricSpec("coverage", "coverage", "metrics", better="higher", floor=True, table="quality"),
    MetricSpec("memorization", "memorization", "metrics", better="lower", table="quality"),
    MetricSpec("fid_inception", "FID (Inception)", "metrics", better="lower", floor=True),
    MetricSpec("bits_per_dim", "bits/dim", "metrics", unit="bits/dim", better="lower", table="cost"),
    MetricSpec("elbo_bits_per_dim", "ELBO bits/dim", "metrics", unit="bits/dim", better="lower"),
    # conditional runs (protocol v3; null on unconditional runs): samples ask for labels spread evenly
    # over the classes; the floor draws real training images evenly by class (bench.evaluate.conditional)
    MetricSpec(
        "accuracy", "accuracy of conditional samples", "metrics", better="higher", floor=True, table="conditional"
    ),
    MetricSpec(
        "class_kid_mean",
        "per-class KID mean (standardized classifier features)",
        "metrics",
        better="lower",
        floor=True,
        table="conditional",
    ),
    MetricSpec(
        "class_kid_worst",
        "worst-class KID (standardized classifier features)",
        "metrics",
        better="lower",
        floor=True,
        table="conditional",
    ),
    MetricSpec(
        "bits_per_dim_given_label",
        "bits/dim given the label",
        "metrics",
        unit="bits/dim",
        better="lower",
        table="conditional",
    ),
    MetricSpec(
        "elbo_bits_per_dim_given_label", "ELBO bits/dim given the label", "metrics", unit="bits/dim", better="lower"
    ),
    MetricSpec("train_seconds", "train s", "training", unit="s", table="cost"),
    # images seen x FLOPs per training image, counted before training (a `flops` budget's measure)
    MetricSpec("train_flops", "training FLOPs", "training", unit="FLOPs", table="cost"),
    MetricSpec("sample_images_per_s", "sampling img/s", "timing", unit="images/s", better="higher", table="cost"),
    # per CPU second of the sampling process: on a shared CPU, not stretched by other jobs' load
    MetricSpec(
        "sample_images_per_cpu_s",
        "sampling img/CPU s",
        "timing",
        unit="images per CPU second",
        better="higher",
        table="cost",
    ),
    MetricSpec("parameters_sampling", "parameters (sampling)", "timing", table="cost", integer=True),
    MetricSpec("flops_per_sample", "sampling FLOPs/image", "timing", unit="FLOPs", table="cost", integer=True),
)
METRIC_BY_KEY: dict[str, MetricSpec] = {m.key: m for m in METRICS}
#: Feature metrics the data floor also has, in report order.
FLOOR_KEYS: tuple[str, ...] = tuple(m.key for m in METRICS if m.floor)
#: The report's quality columns, in order.
QUALITY_KEYS: tuple[str, ...] = tuple(m.key for m in METRICS if m.table == "quality")
#: Keys computed from image features alone (no likelihood, no Inception).
FEATURE_KEYS: tuple[str, ...] = (
    "fid",
    "kid_mean",
    "kid_std",
    "fid_sampling_std",
    "inception_score",
    "precision",
    "recall",
    "density",
    "coverage",
)
#: The report's columns for conditional runs, in order.
CONDITIONAL_KEYS: tuple[str, ...] = tuple(m.key for m in METRICS if m.table == "conditional")
#: What conditional evaluation adds to `metrics` (null on unconditional runs, so every record has every key).
CONDITIONAL_NA: dict[str, Any] = {
    "accuracy": None,
    "class_kid_mean": None,
    "class_kid_worst": None,
    "bits_per_dim_given_label": None,
    "elbo_bits_per_dim_given_label": None,
}
#: The data floor's conditional keys (its class-balanced draws), null on unconditional runs.
CONDITIONAL_FLOOR_KEYS: tuple[str, ...] = tuple(k for k in CONDITIONAL_KEYS if METRIC_BY_KEY[k].floor)
#: What the guidance sweep records per weight w (labels: those of METRICS).
GUIDANCE_SWEEP_KEYS: tuple[str, ...] = ("accuracy", "fid", "recall")
#: What a model without a likelihood (or a folder of samples) records for it.
LIKELIHOOD_NA: dict[str, Any] = {"bits_per_dim": None, "bits_per_dim_kind": "n/a", "elbo_bits_per_dim": None}
BITS_PER_DIM_KINDS = ("exact", "bound", "n/a")


#: The metrics in the one line a sweep prints per finished job, in order.
HEADLINE_KEYS: tuple[str, ...] = ("fid", "bits_per_dim")
#: Values logged while training (columns of `metrics.csv`) that progress lines show, first present wins.
TRAINING_LOG_KEYS: tuple[str, ...] = ("val/bpd", "train/loss", "train/g_loss", "train/d_loss")


def label(key: str) -> str:
    """The label of metric `key` (the key itself for keys not declared here)."""
    spec = METRIC_BY_KEY.get(key)
    return spec.label if spec else key


# ---- the run record's sections (`result.json`, see bench.core.records) ----------------------------
#: `validated`: a tuning trial (`validate_only=true`), trained and scored on the validation split only
Status = Literal["completed", "failed", "diverged", "interrupted", "validated"]
StoppedBy = Literal[
    "time", "samples", "flops", "max_epochs", "early_stopping", "closed_form", "diverged", "error", "interrupted"
]


class Budget(TypedDict):
    kind: Literal["time", "samples", "flops"]
    value: float
    stopped_by: StoppedBy | None


class Training(TypedDict, total=False):
    samples_seen: int
    optimizer_steps: int
    epochs: int
    train_seconds: float
    train_images_per_s: float | None
    eval_seconds_during_training: float
    train_flops: float | None  # samples_seen x flops_per_train_image (counted before training)
    flops_per_train_image: float | None


class Timing(TypedDict, total=False):
    sample_images_per_s: float
    sample_images_per_cpu_s: float
    latency_ms_per_image: float
    measurement: dict  # {warmup, repeats, statistic, lock, concurrent_jobs}
    phases: dict  # seconds per phase: startup, training, validation, checkpointing, evaluation
    parameters_sampling: int
    parameters_training: int
    flops_per_sample: float | None
    flops_per_sample_source: str | None
    flops_per_train_sample: float | None
    flops_per_train_sample_source: str | None
    peak_memory_mb: float | None
    peak_memory_kind: str


class GuidanceSweepSection(TypedDict, total=False):
    weights: list  # protocol.guidance_sweep
    applies: bool  # false: the model is unconditional or its family has no guidance
    reason: str | None  # why it does not apply
    points: list  # [{guidance, accuracy, fid, recall}] (GUIDANCE_SWEEP_KEYS), one per weight


class Record(TypedDict, total=False):
    schema_version: int
    conditional: bool  # the model conditions on class labels (model.conditional); absent before protocol v3
    run_id: str
    status: Status
    message: str | None
    created: str
    config: dict
    config_hash: str
    family: str
    model: str
    dataset: str
    seed: int
    resumed: bool
    budget: Budget
    training: Training
    checkpoint: dict
    metrics: dict  # keys of METRICS with section "metrics", plus bits_per_dim_kind
    protocol: dict
    data_floor: dict  # FLOOR_KEYS (means over draws) plus {draws, n_draws, half_width, ...}
    per_class: dict  # conditional runs: {num_classes, labels, n_generated, n_reference, accuracy, kid_mean, kid_std}
    guidance_sweep: GuidanceSweepSection  # conditional runs under a protocol with a guidance sweep
    timing: Timing
    curves: dict
    environment: dict
    dataset_spec: dict
    paths: dict
