"""Which small changes to published numbers does the test named for each one catch? (a manual tool, not CI)

Each mutant below is a change of a line or two that alters a number the suite publishes, and names
the test that must catch it (a pytest node id; a parametrized test without its parameters runs
every case). For each, the tool copies the repository's files (tracked and untracked-but-not-ignored)
to a temporary folder, applies the change there and runs only that test in the copy (PYTHONPATH
pointing at the copy and at the copy's diffusion example). A mutant is

- *caught* when the named test fails in its own body with an `AssertionError` (or `pytest.fail`,
  e.g. `DID NOT RAISE`), as reported by a pytest plugin that records each failure's exception type;
- *error* when it fails otherwise (another exception, a failing fixture, a collection error): the
  change broke something, but not the assertion meant to see the number;
- *missed* when the named test passes; *timeout* when it runs past `--timeout`;
- *stale* when its original text is no longer in the code exactly once (update the list);
- *baseline fails* when the named test does not pass on the unmutated copy (run first, all named
  tests in one pytest call; skipped with `--skip-baseline`).

Writes the table and the totals to benchmarks/mutants.md.

    python benchmarks/mutants.py [--only NAME[,NAME...]] [--timeout 600] [--list] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "benchmarks" / "mutants.md"
DIFFUSION = "examples/bench-diffusion"  # its package folder goes on PYTHONPATH, so its mutants apply


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository root; a unique path suffix also matches (files move)
    original: str  # must occur exactly once in the file
    replacement: str
    description: str
    test: str  # the pytest node id that must fail with an assertion
    from_issue: int | None = None  # the issue that found the change passing the suite, where one did


TRAINING = "tests/run/test_numbers_training.py::"
LIKELIHOOD = "tests/models/test_numbers_likelihood.py::"
METRICS = "tests/evaluate/test_numbers_metrics.py::"
TIMING = "tests/evaluate/test_timing.py::"
DIFFUSION_TESTS = f"{DIFFUSION}/tests/test_diffusion.py::"
KIT = "tests/testing/test_contract.py::test_every_model_config_passes_exactly_its_checks"
LARGE = "tests/models/test_large_images.py::test_every_family_trains_a_few_steps_and_samples"
PLANTED = "tests/pipeline/test_planted_records.py::"
HASH = "tests/config/test_config_hash.py::"

MUTANTS = [
    Mutant(
        "validation_cadence_on_train_size",
        "bench/run/fit.py",
        "images = float(every) * len(datamodule.val_images)",
        "images = float(every) * len(datamodule.train_images)",
        "validation cadence from the training split's size (far fewer best-checkpoint candidates)",
        TRAINING + "test_validation_comes_after_every_validation_every_times_the_validation_set_in_training_images",
    ),
    Mutant(
        "deferred_timing_draws_other_samples",
        "bench/evaluate/cost/timing.py",
        "            samples = draw(n, seed)",
        "            samples = draw(n, seed + 1)",
        "a parallel sweep's job scores samples of another seed than the one its record names",
        "tests/evaluate/test_evaluate.py::test_a_deferred_timing_draws_the_same_scored_samples_and_leaves_the_speed"
        "_to_the_timing_pass",
    ),
    Mutant(
        "marginal_without_class_prior",
        "bench/models/base.py",
        "log_marginal = torch.logsumexp(log_p, 0) - math.log(self.num_classes)",
        "log_marginal = torch.logsumexp(log_p, 0)",
        "a conditional model's unconditional bits/dim without the class prior (too low by log2(K)/dims)",
        "tests/models/test_conditional_models.py::test_conditional_likelihoods_sum_to_one_per_label_and_the_marginal_is"
        "_their_mean",
    ),
    Mutant(
        "conditional_labels_all_class_0",
        "bench/models/base.py",
        "return torch.arange(n, dtype=torch.int64) % num_classes",
        "return torch.zeros(n, dtype=torch.int64)",
        "conditional samples all asked for class 0 instead of spread over the classes",
        "tests/models/test_conditional_interface.py::test_evaluation_labels_spread_evenly_over_the_classes",
    ),
    Mutant(
        "label_dropout_inverted",
        "bench/models/base.py",
        "drop = torch.rand(labels.shape, device=labels.device) < self.label_dropout",
        "drop = torch.rand(labels.shape, device=labels.device) > self.label_dropout",
        "training labels dropped with probability 1 - label_dropout",
        "tests/models/test_conditional_interface.py::test_label_dropout_replaces_that_share_of_labels_by_the_null_label"
        "_and_keeps_the_rest",
    ),
    Mutant(
        "class_accuracy_ignores_labels",
        "bench/evaluate/conditional.py",
        "return (logits.argmax(1) == labels.to(logits.device)).double().mean().item()",
        "return (logits.argmax(1) == logits.argmax(1)).double().mean().item()",
        "accuracy of conditional samples always 1",
        "tests/evaluate/test_conditional_metrics.py::test_accuracy_is_one_for_a_class_copier_and_chance_for_a_label"
        "_ignoring_model",
    ),
    Mutant(
        "memorization_percentile_10",
        "bench/evaluate/metrics/memorization.py",
        "QUANTILE = 0.05",
        "QUANTILE = 0.10",
        "memorization threshold at the 10th percentile of validation->train distances",
        "tests/evaluate/test_evaluate.py::test_memorization_of_a_copier_and_of_held_out_images",
        9,
    ),
    Mutant(
        "iwae_without_log_k",
        "bench/models/cnn_decoder.py",
        "log_p = torch.logsumexp(log_w, dim=0) - math.log(k)",
        "log_p = torch.logsumexp(log_w, dim=0)",
        "IWAE bound without its - log k (VAE bits/dim too low)",
        LIKELIHOOD + "test_iwae_bound_gives_every_image_together_at_most_probability_one",
        9,
    ),
    Mutant(
        "fid_on_standardized_features",
        "bench/evaluate/reference_set.py",
        '"fid": fm.frechet_distance(identity, ref.features, feats),',
        '"fid": fm.frechet_distance(identity, ref.standardized(ref.features), ref.standardized(feats)),',
        "headline FID on the standardized features meant for KID",
        METRICS + "test_published_fid_equals_scipy_fid_on_the_classifier_features",
        9,
    ),
    Mutant(
        "checkpoint_by_highest_val_bpd",
        "bench/run/fit.py",
        'monitor=monitor,\n        mode="min"',
        'monitor=monitor,\n        mode="max"',
        "each table's checkpoint chosen by the highest validation metric",
        TRAINING + "test_each_table_is_scored_at_its_own_lowest_validation_metric",
        9,
    ),
    Mutant(
        "kid_on_raw_features",
        "bench/evaluate/reference_set.py",
        "identity, ref.standardized(ref.features), ref.standardized(feats), p.kid_subset_size",
        "identity, ref.features, feats, p.kid_subset_size",
        "KID on raw instead of standardized features",
        METRICS + "test_published_kid_is_the_mmd_of_features_standardized_by_the_reference",
    ),
    Mutant(
        "kid_half_subsets",
        "bench/evaluate/metrics/feature_metrics.py",
        "size = min(subset_size, len(real), len(fake))",
        "size = min(subset_size, len(real), len(fake)) // 2",
        "KID subsets half the size the protocol records",
        METRICS + "test_published_kid_is_the_mmd_of_features_standardized_by_the_reference",
    ),
    Mutant(
        "inception_score_10_splits",
        "bench/evaluate/reference_set.py",
        "fm.inception_score(fm.Precomputed(logits.shape[1]), logits, seed, p.is_splits)",
        "fm.inception_score(fm.Precomputed(logits.shape[1]), logits, seed, 10)",
        "Inception Score over 10 splits instead of the protocol's",
        METRICS + "test_published_inception_score_is_one_split_of_the_classifier_softmax",
    ),
    Mutant(
        "prdc_k_3",
        "bench/evaluate/reference_set.py",
        "**prdc(ref.features, feats, p.pr_k),",
        "**prdc(ref.features, feats, 3),",
        "precision/recall/density/coverage with k=3 instead of the protocol's k",
        METRICS + "test_published_precision_recall_density_coverage_use_k_5_neighbourhoods",
    ),
    Mutant(
        "floor_from_test_split",
        "bench/evaluate/floor.py",
        "images = ref.train[order[:n]]",
        "images = ref.images[order[:n]]",
        "data floor drawn from the reference (test) split instead of train",
        "tests/evaluate/test_evaluate.py::test_data_floor_is_seeded_cached_and_bounded_by_the_train_split",
    ),
    Mutant(
        "floor_of_half_the_images",
        "bench/evaluate/floor.py",
        "images = ref.train[order[:n]]",
        "images = ref.train[order[:n // 2]]",
        "data floor scored on n / 2 training images while the record says n (FID biased up)",
        "tests/evaluate/test_evaluate.py::test_data_floor_is_seeded_cached_and_bounded_by_the_train_split",
        16,
    ),
    Mutant(
        "vae_bits_in_nats",
        "bench/models/cnn_decoder.py",
        "LOG2 = math.log(2.0)",
        "LOG2 = 1.0",
        "VAE bits/dim in nats (log base e)",
        LARGE + "[cnn_decoder-28x28x1]",
    ),
    Mutant(
        "token_bits_in_nats",
        "bench/models/pixel_tokens.py",
        "return nats.mean(dim=1) / math.log(2.0)",
        "return nats.mean(dim=1)",
        "RNN/GPT bits/dim in nats (5.5 on uniform 256 levels, inside the old bound of 12)",
        LARGE + "[gpt-28x28x1]",
        16,
    ),
    Mutant(
        "token_bits_per_image",
        "bench/models/pixel_tokens.py",
        "return nats.mean(dim=1) / math.log(2.0)",
        "return nats.sum(dim=1) / math.log(2.0)",
        "RNN/GPT bits/dim summed over pixels instead of divided by dims",
        LIKELIHOOD + "test_exact_likelihoods_give_every_image_together_probability_one",
    ),
    Mutant(
        "elbo_kl_doubled",
        "bench/models/cnn_decoder.py",
        "kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)",
        "kl = (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)",
        "VAE ELBO with the KL term doubled",
        LIKELIHOOD + "test_iwae_at_k_1_equals_the_elbo_in_expectation",
    ),
    Mutant(
        "headline_bpd_is_elbo",
        "bench/evaluate/metrics/likelihood.py",
        '"bits_per_dim": iwae if iwae is not None else nll,',
        '"bits_per_dim": nll,',
        "VAE headline bits/dim is the ELBO, not the IWAE bound",
        LIKELIHOOD + "test_published_vae_bits_per_dim_is_the_iwae_bound_with_the_elbo_beside_it",
    ),
    Mutant(
        "quantize_floor",
        "bench/data/spec.py",
        "x = torch.round(x.clamp(0.0, 1.0) * (levels - 1))",
        "x = torch.floor(x.clamp(0.0, 1.0) * (levels - 1))",
        "continuous samples quantized by flooring instead of rounding",
        "tests/data/test_data.py::test_quantize_clamps_and_rounds",
    ),
    Mutant(
        "to_unit_by_levels",
        "bench/data/spec.py",
        "return x.to(torch.float32) / (levels - 1)",
        "return x.to(torch.float32) / levels",
        "pixel intensities divided by levels instead of levels - 1",
        "tests/data/test_data.py::test_quantize_round_trip",
    ),
    Mutant(
        "samples_seen_doubled",
        "bench/run/budget.py",
        "self.samples_seen += len(batch[0])",
        "self.samples_seen += 2 * len(batch[0])",
        "samples-seen budget counts every image twice",
        "tests/models/test_gan.py::test_runs_through_the_training_entry_point",
    ),
    Mutant(
        "lr_cosine_to_zero",
        "bench/models/base.py",
        "return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress))",
        "return 0.5 * (1.0 + math.cos(math.pi * progress))",
        "cosine learning rate ends at 0 instead of 2% of the base",
        TRAINING + "test_learning_rate_warms_up_linearly_then_decays_by_cosine_to_two_percent",
    ),
    Mutant(
        "lr_schedule_not_applied",
        "bench/run/budget.py",
        'group["lr"] = group["initial_lr"] * factor',
        'group["lr"] = group["initial_lr"]',
        "the optimizer never follows the learning-rate schedule",
        TRAINING + "test_training_follows_the_learning_rate_and_kl_warm_up_schedules",
    ),
    Mutant(
        "kl_warmup_ignores_its_length",
        "bench/models/cnn_decoder.py",
        "beta = min(1.0, budget.fraction / self.kl_warmup_fraction)",
        "beta = min(1.0, budget.fraction)",
        "KL warm-up over the whole budget instead of its configured fraction",
        TRAINING + "test_training_follows_the_learning_rate_and_kl_warm_up_schedules",
    ),
    Mutant(
        "eval_time_in_budget",
        "bench/run/fit.py",
        "callbacks: list[pl.Callback] = [budget, *extra_callbacks, history, FlushLogsOnCheckpoint()]",
        "callbacks: list[pl.Callback] = [*extra_callbacks, budget, history, FlushLogsOnCheckpoint()]",
        "the quality curve's evaluation time counted as training time",
        TRAINING + "test_evaluation_during_training_is_kept_out_of_the_training_time",
    ),
    Mutant(
        "best_checkpoint_not_loaded",
        "bench/run/fit.py",
        'module.load_state_dict(states["quality"])',
        'states.get("quality")',
        "the last weights are scored while the record names the best checkpoint",
        "tests/run/test_selection.py::test_a_gan_is_scored_at_its_best_validation_fid_not_its_final_weights",
    ),
    Mutant(
        "bits_per_dim_at_the_quality_checkpoint",
        "bench/evaluate/score.py",
        "    with weights(module, likelihood_state):",
        "    with weights(module, None):",
        "bits/dim scored with the sample-quality table's weights, not the best validation bits/dim",
        PLANTED + "test_bench_eval_scores_bits_per_dim_with_the_likelihood_tables_checkpoint",
    ),
    Mutant(
        "early_stop_not_said",
        "bench/run/fit.py",
        'stopped_by=budget.stopped_by or ("early_stopping" if stopped_early else "max_epochs"),',
        'stopped_by=budget.stopped_by or "max_epochs",',
        "a run ended by early stopping recorded as if it had run out of epochs",
        "tests/run/test_selection.py::test_early_stopping_ends_training_after_patience_validations_without_a_better_fid",
    ),
    Mutant(
        "tuning_trial_scored_on_test",
        "bench/pipeline/stages.py",
        "        if cfg.validate_only:",
        "        if False:",
        "a tuning trial goes on to the test split",
        "tests/pipeline/test_tuning.py::test_a_trial_trains_and_validates_without_reading_the_test_split",
    ),
    Mutant(
        "nan_loss_never_checked",
        "bench/run/budget.py",
        "finite = not checks or bool(torch.stack([c.cpu() for c in checks]).all())",
        "finite = True",
        "non-finite losses or weights never mark the run as diverged",
        TRAINING + "test_a_run_whose_loss_turns_nan_is_recorded_as_diverged",
    ),
    # ---- issue 16: the numbers its tests now pin ---------------------------------------------
    Mutant(
        "timing_min_not_median",
        "bench/evaluate/cost/timing.py",
        'STATISTIC, STATISTIC_NAME = statistics.median, "median"',
        'STATISTIC, STATISTIC_NAME = min, "median"',
        "sampling speed from the fastest repeat while the record says median",
        TIMING + "test_speed_is_images_per_repeat_over_the_median_repeat",
        16,
    ),
    Mutant(
        "timing_without_warm_up",
        "bench/evaluate/cost/timing.py",
        "        samples, scored_s = _timed(lambda: draw(n, seed), device)\n"
        "        times, cpu_times = _repeats(lambda i: draw(per_repeat, seed + 1 + i), repeats, device)\n",
        "        times, cpu_times = _repeats(lambda i: draw(per_repeat, seed + 1 + i), repeats, device)\n"
        "        samples, scored_s = _timed(lambda: draw(n, seed), device)\n",
        "timed draws before the scored draw that warms up (the first timed draw cold)",
        TIMING + "test_timed_draws_are_warm_after_the_scored_draw_of_a_full_batch",
        16,
    ),
    Mutant(
        "timing_repeats_draw_all_n",
        "bench/evaluate/cost/timing.py",
        "return max(1, min(n, TIMED_BATCHES * batch))",
        "return n",
        "every timed repeat draws all N images again",
        TIMING + "test_timing_draws_n_images_once_and_a_few_batches_besides",
        16,
    ),
    Mutant(
        "diffusion_variance_beta_not_posterior",
        f"{DIFFUSION}/bench_diffusion/model.py",
        "sigma = self.eta * ((1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev)) ** 0.5",
        "sigma = self.eta * (1.0 - ab / ab_prev) ** 0.5",
        "ancestral steps with variance beta_t instead of the posterior's",
        DIFFUSION_TESTS + "test_each_ancestral_step_draws_from_the_closed_form_posterior",
        16,
    ),
    Mutant(
        "diffusion_direction_ignores_sigma",
        f"{DIFFUSION}/bench_diffusion/model.py",
        "max(1.0 - ab_prev - sigma ** 2, 0.0) ** 0.5 * eps",
        "max(1.0 - ab_prev, 0.0) ** 0.5 * eps",
        "ancestral steps whose noise direction keeps the variance the added noise already brings",
        DIFFUSION_TESTS + "test_each_ancestral_step_draws_from_the_closed_form_posterior",
        16,
    ),
    Mutant(
        "diffusion_x0_at_this_step",
        f"{DIFFUSION}/bench_diffusion/model.py",
        "x = ab_prev ** 0.5 * x0 +",
        "x = ab ** 0.5 * x0 +",
        "each step scales the predicted x_0 by the current instead of the next signal level",
        DIFFUSION_TESTS + "test_each_ddim_step_is_the_deterministic_update",
        16,
    ),
    Mutant(
        "diffusion_one_starting_noise",
        f"{DIFFUSION}/bench_diffusion/model.py",
        "x = torch.randn((n, *self.spec.shape), generator=generator, device=self.device)",
        "x = torch.randn((1, *self.spec.shape), generator=generator, device=self.device).expand(n, -1, -1, -1)",
        "one starting noise for the whole draw: deterministic DDIM collapses onto one image",
        DIFFUSION_TESTS + "test_passes_the_contract_kit_and_a_smoke_bench_train_run",
        16,
    ),
    Mutant(
        "gan_ignores_its_generator",
        "bench/models/gan.py",
        "z = torch.randn(n, self.net.latent_dim, generator=generator, device=self.device)",
        "z = torch.randn(n, self.net.latent_dim, generator=torch.Generator(self.device).manual_seed(0), "
        "device=self.device)",
        "GAN latents from a fixed seed of its own: the same samples under every generator",
        KIT + "[gan]",
        16,
    ),
    Mutant(
        "gan_one_latent",
        "bench/models/gan.py",
        "z = torch.randn(n, self.net.latent_dim, generator=generator, device=self.device)",
        "z = torch.randn(1, self.net.latent_dim, generator=generator, device=self.device).expand(n, -1)",
        "one GAN latent for the whole draw: every sample the same image",
        KIT + "[gan]",
        16,
    ),
    Mutant(
        "record_interpolations_resolved",
        "bench/pipeline/saved_run.py",
        'if isinstance(value, str) and "${" in value:',
        "if False:",
        "a received record's ${oc.env:...} values reach the rebuilt run (resolved, never refused)",
        PLANTED + "test_bench_eval_refuses_a_planted_record_in_one_line_and_writes_nothing[env_interpolation]",
        16,
    ),
    Mutant(
        "record_nested_targets_allowed",
        "bench/pipeline/saved_run.py",
        'if key.rsplit(".", 1)[-1] in HYDRA_NODE_KEYS and key != "config.model.net._target_":',
        'if key.rsplit(".", 1)[-1] in HYDRA_NODE_KEYS and key.startswith("config.model.module"):',
        "a received record's nested _target_ under model.net is let through to the network build",
        PLANTED + "test_bench_eval_refuses_a_planted_record_in_one_line_and_writes_nothing[nested_target]",
        16,
    ),
    Mutant(
        "record_any_network_allowed",
        "bench/pipeline/saved_run.py",
        "    if target not in allowed:",
        "    if target is None:",
        "a received record may name any class as its network",
        PLANTED + "test_bench_eval_refuses_a_planted_record_in_one_line_and_writes_nothing[undeclared_network]",
        16,
    ),
    Mutant(
        "timing_pass_scans_the_sweep_folder",
        "bench/pipeline/timing_pass.py",
        "pending = [folder for folder in folders if is_pending(read_record(folder))]",
        "pending = [p.parent for f in folders for p in f.parent.glob('*/result.json') "
        "if is_pending(read_record(p.parent))]",
        "the sweep's timing pass times every deferred record in the sweep folder, planted ones included",
        PLANTED + "test_the_sweeps_timing_pass_never_reads_a_folder_no_job_names",
        16,
    ),
    Mutant(
        "hash_skips_validation_every",
        "bench/config/run_folder.py",
        "    for key in UNHASHED_KEYS:",
        "    for key in (*UNHASHED_KEYS, 'validation_every'):",
        "validation_every (which checkpoint is evaluated) left out of the config hash: a changed cadence skips",
        HASH + "test_validation_cadence_and_concurrency_change_the_hash",
        16,
    ),
    Mutant(
        "n_not_capped_at_a_small_split",
        "bench/pipeline/stages.py",
        "    if n <= available:",
        "    if True:",
        "a folder smaller than N trains fully, then fails at the data floor",
        "tests/pipeline/test_train.py::test_a_folder_smaller_than_n_is_scored_at_its_training_split_size",
        16,
    ),
    Mutant(
        "claims_not_holm_corrected",
        "bench/report/claims.py",
        "        result.p_holm = float(p)",
        "        result.p_holm = result.p_value",
        "the claims' p-values left uncorrected for the number of claims",
        "tests/report/test_claims.py::test_fixed_verdicts_against_scipy_and_holm",
    ),
    Mutant(
        "tost_one_sided_margin",
        "bench/report/claims.py",
        'ttost_ind(np.asarray(a), np.asarray(b), -m, m, usevar="unequal")',
        'ttost_ind(np.asarray(a), np.asarray(b), 0, m, usevar="unequal")',
        "equivalence tested within [0, margin] instead of ±margin",
        "tests/report/test_claims.py::test_tost_equivalence_and_seeds_needed",
    ),
    Mutant(
        "pairwise_uncorrected",
        "bench/report/aggregate.py",
        "out[key] = Comparison(c.a, c.b, c.p_value, verdict, p < ALPHA, p)",
        "out[key] = Comparison(c.a, c.b, c.p_value, verdict, c.p_value < ALPHA, c.p_value)",
        "the pairwise table's verdicts at the raw p-values, not Holm's",
        "tests/report/test_report.py::test_pairwise_verdicts_are_holm_corrected",
    ),
    Mutant(
        "floor_interval_over_overlapping_draws",
        "bench/report/aggregate.py",
        '    summaries["fid"] = floor_fid(draws, summaries["fid"])',
        "    pass",
        "the v6 floor's interval from the t over its 5 overlapping draws, not a draw's sampling sd",
        "tests/report/test_uncertainty.py::test_floor_interval_covers_a_new_draw_of_both_sides",
    ),
    Mutant(
        "jackknife_without_finite_factor",
        "bench/evaluate/metrics/fid_jackknife.py",
        "    return float((g - 1) / g * ((values - values.mean()) ** 2).sum())",
        "    return float(((values - values.mean()) ** 2).sum() / g)",
        "the jackknife variance without its (G-1)/G factor (the sd G-1 times too small)",
        "tests/evaluate/test_fid_jackknife.py::test_the_jackknife_equals_a_brute_force_loop_of_sqrtm_fids",
    ),
    Mutant(
        "sequential_at_fixed_alpha",
        "bench/report/sequential.py",
        "                if tests[i].pvalue <= level:",
        "                if tests[i].pvalue <= design.alpha:",
        "decide=true tests at alpha after every seed instead of the group-sequential levels",
        "tests/report/test_sequential.py::test_a_first_look_significant_at_alpha_is_not_yet_decided",
    ),
    Mutant(
        "train_flops_doubled",
        "bench/run/budget.py",
        "return None if self.flops_per_image is None else self.samples_seen * self.flops_per_image",
        "return None if self.flops_per_image is None else 2 * self.samples_seen * self.flops_per_image",
        "a FLOP budget charged twice the FLOPs per image (stops at half the images, records twice the FLOPs)",
        "tests/pipeline/test_flops_budget.py::"
        "test_flops_budget_stops_at_the_first_batch_that_reaches_it_and_records_flops_everywhere",
    ),
    Mutant(
        "equal_flops_linear_interpolation",
        "bench/report/compute.py",
        "    return float(np.interp(math.log(flops), np.log(x), y))",
        "    return float(np.interp(flops, x, y))",
        "FID at equal training FLOPs interpolated linearly in FLOPs, not in log FLOPs",
        "tests/report/test_compute.py::test_fid_at_is_linear_in_log_flops_and_never_extrapolates",
    ),
    Mutant(
        "equal_flops_extrapolates",
        "bench/report/compute.py",
        "    start, stop = max(c[0][0] for c in drawn), min(c[0][-1] for c in drawn)",
        "    start, stop = min(c[0][0] for c in drawn), max(c[0][-1] for c in drawn)",
        "the equal-compute levels span any run's curve, not the range every run covers",
        "tests/report/test_compute.py::test_equal_compute_reads_every_run_inside_the_range_all_of_them_cover",
    ),
    Mutant(
        "pareto_dominated_by_a_baseline",
        "bench/report/compute.py",
        "        if other.trained\n",
        "        if other.model\n",
        "a closed-form copier (free and good) pushes every trained model off the Pareto front",
        "tests/report/test_compute.py::test_pareto_front_of_fid_against_sampling_flops",
    ),
    Mutant(
        "time_budgets_merge_across_devices",
        "bench/report/collect.py",
        'MACHINE_INDEPENDENT = ("samples", "flops")',
        'MACHINE_INDEPENDENT = ("samples", "flops", "time")',
        "time-budget runs of different devices or jobs per machine averaged in one group",
        "tests/report/test_merge.py::"
        "test_time_budget_runs_of_different_device_classes_stay_apart_and_the_report_says_why",
    ),
    Mutant(
        "same_seed_of_two_machines_counted_twice",
        "bench/report/collect.py",
        "        identity = (key, run.model, run.seed)",
        '        identity = (key, record.get("config_hash"), run.model, run.seed)',
        "the same model and seed trained on two machines (other config hashes) counted as two seeds",
        "tests/report/test_merge.py::test_a_model_and_seed_found_in_two_folders_count_once",
    ),
]


def tracked_files(repo: Path) -> list[str]:
    """Files git would commit: tracked ones and untracked ones that are not ignored."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [p for p in out.split("\0") if p and (repo / p).is_file()]


def copy_tree(repo: Path, files: list[str], dest: Path) -> None:
    for rel in files:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, dest / rel)


def resolve(mutant: Mutant, files: list[str]) -> str | None:
    """The file a mutant targets: its path, or the one file whose path ends with it."""
    if mutant.path in files:
        return mutant.path
    matches = [f for f in files if f.endswith("/" + mutant.path.split("/", 1)[-1])]
    return matches[0] if len(matches) == 1 else None


#: A pytest plugin, written next to the copy, that records every failure with its exception type.
PLUGIN = """
import json, os
import pytest

_rows = []


def _row(nodeid, when, outcome, excinfo, message=None):
    kinds = (AssertionError, pytest.fail.Exception)
    assertion = bool(excinfo) and excinfo.errisinstance(kinds)
    text = message if message is not None else (str(excinfo.value) if excinfo else "")
    first = (text.strip().splitlines() or [""])[0][:160]
    _rows.append({"nodeid": nodeid, "when": when, "outcome": outcome, "assertion": assertion,
                  "exception": excinfo.typename if excinfo else None, "message": first})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if report.when == "call" or not report.passed:
        _row(report.nodeid, report.when, report.outcome, call.excinfo)


def pytest_collectreport(report):
    if report.failed:
        _row(report.nodeid, "collect", "failed", None, str(report.longrepr).strip().splitlines()[-1])


def pytest_sessionfinish(session):
    with open(os.environ["MUTANT_OUTCOMES"], "w") as fh:
        json.dump(_rows, fh)
"""


def run_tests(copy: Path, tests: list[str], timeout: float) -> tuple[list[dict] | None, float]:
    """Run `tests` in `copy`; returns the plugin's rows (None on a timeout) and the seconds taken."""
    outcomes = copy.parent / "outcomes.json"
    outcomes.unlink(missing_ok=True)
    path = os.pathsep.join([str(copy.parent / "plugin"), str(copy), str(copy / DIFFUSION)])
    env = {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1", "MUTANT_OUTCOMES": str(outcomes)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "mutant_outcomes", *tests]
    started = time.perf_counter()
    try:
        subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - started
    seconds = time.perf_counter() - started
    if not outcomes.exists():
        return [
            {
                "nodeid": "",
                "when": "session",
                "outcome": "failed",
                "assertion": False,
                "exception": "no report",
                "message": "pytest ended without writing its outcomes",
            }
        ], seconds
    return json.loads(outcomes.read_text()), seconds


def _named(test: str, nodeid: str) -> bool:
    """Whether `nodeid` is the named test or one of its cases; pytest names a test relative to its
    rootdir, which is the example's own folder for the diffusion example's tests."""
    base, _, case = nodeid.partition("[")
    wanted, _, wanted_case = test.partition("[")
    same = base == wanted or wanted.endswith("/" + base)
    return same and (not wanted_case or case == wanted_case)


def verdict(test: str, rows: list[dict]) -> tuple[str, str]:
    """('caught' | 'error' | 'missed' | 'skipped', detail) of the named test from the plugin's rows."""
    mine = [r for r in rows if _named(test, r["nodeid"])]
    failed = [r for r in mine if r["outcome"] == "failed"]
    caught = [r for r in failed if r["when"] == "call" and r["assertion"]]
    if caught:
        return "caught", f"{caught[0]['nodeid'].split('::')[-1]}: {caught[0]['message']}"
    if failed:
        r = failed[0]
        return "error", f"{r['exception']} at {r['when']}: {r['message']}"
    if not mine:
        broken = [r for r in rows if r["outcome"] == "failed"]
        return "error", (
            f"{broken[0]['exception'] or 'error'}: {broken[0]['message']}"
            if broken
            else "the named test was not collected"
        )
    if all(r["outcome"] == "skipped" for r in mine):
        return "skipped", mine[0]["message"]
    return "missed", f"{len(mine)} case(s) passed"


def evaluate(mutant: Mutant, copy: Path, files: list[str], timeout: float) -> dict:
    target = resolve(mutant, files)
    row = {"mutant": mutant, "file": target or mutant.path, "seconds": 0.0}
    if target is None:
        return {**row, "status": "stale", "detail": "file not found"}
    path = copy / target
    source = path.read_text()
    found = source.count(mutant.original)
    if found != 1:
        return {**row, "status": "stale", "detail": f"original text found {found} times, expected once"}
    try:
        path.write_text(source.replace(mutant.original, mutant.replacement))
        rows, seconds = run_tests(copy, [mutant.test], timeout)
    finally:
        path.write_text(source)
    if rows is None:
        return {**row, "status": "timeout", "seconds": seconds, "detail": f"no result after {timeout:.0f} s"}
    status, detail = verdict(mutant.test, rows)
    return {**row, "status": status, "seconds": seconds, "detail": detail}


def baseline(copy: Path, mutants: list[Mutant], timeout: float) -> tuple[dict[str, str], float]:
    """Each named test's verdict on the unmutated copy ('missed' there means it passes)."""
    tests = sorted({m.test for m in mutants})
    rows, seconds = run_tests(copy, tests, timeout)
    if rows is None:
        return {t: f"baseline timed out after {timeout:.0f} s" for t in tests}, seconds
    return {t: verdict(t, rows)[1] for t in tests if verdict(t, rows)[0] != "missed"}, seconds


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def report(rows: list[dict], baseline_note: str) -> str:
    applied = [r for r in rows if r["status"] not in ("stale", "baseline fails")]
    count = {
        s: sum(r["status"] == s for r in rows)
        for s in ("caught", "missed", "error", "timeout", "skipped", "stale", "baseline fails")
    }
    lines = [
        "# Mutants: does the test named for each change catch it?",
        "",
        f"`python benchmarks/mutants.py` on {datetime.now(timezone.utc).isoformat(timespec='seconds')}, "
        f"{platform.node()}, Python {platform.python_version()}; {baseline_note}. A mutant is caught only when "
        "its named test fails in its body with an assertion (see the script's docstring for the other results).",
        "",
        f"**Caught at the named test: {count['caught']} / {len(applied)}** (missed {count['missed']}, "
        f"error {count['error']}, timeout {count['timeout']}, skipped {count['skipped']}; not counted: "
        f"stale {count['stale']}, baseline fails {count['baseline fails']}).",
        "",
        "| mutant | file | named test | result | s | detail |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["mutant"]
        name = m.name + (f" (issue {m.from_issue})" if m.from_issue else "")
        lines.append(
            f"| {_cell(name)} — {_cell(m.description)} | {_cell(r['file'])} | `{_cell(m.test)}` | "
            f"{r['status']} | {r['seconds']:.0f} | {_cell(r['detail'])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], help="mutant name(s), comma-separated or repeated")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per test run (reported as timeout)")
    parser.add_argument("--list", action="store_true", help="list the mutants (and whether each applies)")
    parser.add_argument("--skip-baseline", action="store_true", help="do not run the named tests unmutated first")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    files = tracked_files(REPO)
    if args.list:
        for m in MUTANTS:
            target = resolve(m, files)
            found = target is not None and (REPO / target).read_text().count(m.original) == 1
            print(f"{m.name:<38} {'applies' if found else 'STALE  '} {target or m.path} -> {m.test}")
        return 0
    wanted = {name for item in args.only for name in item.split(",") if name}
    unknown = wanted - {m.name for m in MUTANTS}
    if unknown:
        print(f"error: --only {', '.join(sorted(unknown))}: expected names from --list", file=sys.stderr)
        return 2
    mutants = [m for m in MUTANTS if not wanted or m.name in wanted]

    with tempfile.TemporaryDirectory(prefix="bench-mutants-") as tmp:
        copy = Path(tmp) / "repo"
        copy_tree(REPO, files, copy)
        (Path(tmp) / "plugin").mkdir()
        (Path(tmp) / "plugin" / "mutant_outcomes.py").write_text(PLUGIN)
        failing, note = {}, "baseline skipped"
        if not args.skip_baseline:
            failing, seconds = baseline(copy, mutants, args.timeout * 2)
            note = f"baseline: the named tests ran unmutated in {seconds:.0f} s, {len(failing)} failing"
            print(note + "".join(f"\n  {t}: {d}" for t, d in failing.items()), flush=True)
        rows = []
        for mutant in mutants:
            if mutant.test in failing:
                row = {
                    "mutant": mutant,
                    "file": mutant.path,
                    "seconds": 0.0,
                    "status": "baseline fails",
                    "detail": failing[mutant.test],
                }
            else:
                row = evaluate(mutant, copy, files, args.timeout)
            print(f"{mutant.name}: {row['status']} ({row['seconds']:.0f} s) {row['detail']}", flush=True)
            rows.append(row)
    text = report(rows, note)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
