"""The contract kit for generators: `check_model_config("<model>", results_dir=tmp_path)` runs
every check that applies to a model config (conditional mode included, for families that declare
`supports_conditional`), `check_model(build)` every check for a model factory; the single checks
and tiny-spec helpers are importable one by one."""

from bench.testing.checks import (
    all_images,
    check_bpd_below_uniform,
    check_checkpoint_round_trip,
    check_conditional_likelihood_normalized,
    check_conditional_sample_contract,
    check_conditional_samples_follow_likelihood,
    check_guidance_zero_is_plain_sampling,
    check_labels_honoured,
    check_likelihood_normalized,
    check_loss_falls,
    check_memorizes_one_image,
    check_sample_contract,
    check_sample_variety,
    check_samples_follow_likelihood,
    prototype_batch,
    tiny_batch,
    tiny_spec,
    training_style,
    varied_batch,
)
from bench.testing.kit import (
    CHECKS,
    CONDITIONAL_CHECKS,
    applicable_checks,
    check_bench_train,
    check_model,
    check_model_config,
)

__all__ = [
    "CHECKS",
    "CONDITIONAL_CHECKS",
    "all_images",
    "applicable_checks",
    "check_bench_train",
    "check_bpd_below_uniform",
    "check_checkpoint_round_trip",
    "check_conditional_likelihood_normalized",
    "check_conditional_sample_contract",
    "check_conditional_samples_follow_likelihood",
    "check_guidance_zero_is_plain_sampling",
    "check_labels_honoured",
    "check_likelihood_normalized",
    "check_loss_falls",
    "check_memorizes_one_image",
    "check_model",
    "check_model_config",
    "check_sample_contract",
    "check_sample_variety",
    "check_samples_follow_likelihood",
    "prototype_batch",
    "tiny_batch",
    "tiny_spec",
    "training_style",
    "varied_batch",
]
