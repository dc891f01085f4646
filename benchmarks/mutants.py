"""Which one-line changes to published numbers does the test suite catch? (a manual tool, not CI)

Each mutant below is a one-line change that alters a number the suite publishes. For each, the
tool copies the repository's files (tracked and untracked-but-not-ignored) to a temporary folder,
applies the change there, and runs the fast suite in the copy (`python -m pytest -q -x -p
no:cacheprovider`, with PYTHONPATH pointing at the copy). A mutant is *caught* when the suite
fails (or times out), *missed* when it passes, and *stale* when its original line is no longer
in the code (update the list). The unmutated copy runs first: a failing baseline stops the tool.

The suite runs once per mutant, sequentially; with `-x` a caught mutant stops at its first
failure, a missed one costs a whole suite run (about 3 minutes on 2 cores).

Writes the table and the score to benchmarks/results/mutants.txt.

    python benchmarks/mutants.py [--only NAME[,NAME...]] [--pytest-args "tests/test_x.py -k y"]
                                 [--timeout 1200] [--list] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "benchmarks" / "results" / "mutants.txt"


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository root; a unique path suffix also matches (files move)
    original: str  # must occur exactly once in the file
    replacement: str
    description: str
    from_issue: bool = False  # one of the four changes issue 9 found passing the whole suite


MUTANTS = [
    Mutant("validation_cadence_on_train_size", "bench/fitting.py",
           "images = float(every) * len(datamodule.val_images)", "images = float(every) * len(datamodule.train_images)",
           "validation cadence from the training split's size (far fewer best-checkpoint candidates)"),
    Mutant("deferred_timing_draws_other_samples", "bench/evaluate/timing.py",
           "            samples = draw(n, seed)", "            samples = draw(n, seed + 1)",
           "a parallel sweep's job scores samples of another seed than the one its record names"),
    Mutant("marginal_without_class_prior", "bench/models/base.py",
           "log_marginal = torch.logsumexp(log_p, 0) - math.log(self.num_classes)",
           "log_marginal = torch.logsumexp(log_p, 0)",
           "a conditional model's unconditional bits/dim without the class prior (too low by log2(K)/dims)"),
    Mutant("conditional_labels_all_class_0", "bench/models/base.py",
           "return torch.arange(n, dtype=torch.int64) % num_classes", "return torch.zeros(n, dtype=torch.int64)",
           "conditional samples all asked for class 0 instead of spread over the classes"),
    Mutant("label_dropout_inverted", "bench/models/base.py",
           "drop = torch.rand(labels.shape, device=labels.device) < self.label_dropout",
           "drop = torch.rand(labels.shape, device=labels.device) > self.label_dropout",
           "training labels dropped with probability 1 - label_dropout"),
    Mutant("class_accuracy_ignores_labels", "bench/evaluate/conditional.py",
           "return (logits.argmax(1) == labels.to(logits.device)).double().mean().item()",
           "return (logits.argmax(1) == logits.argmax(1)).double().mean().item()",
           "accuracy of conditional samples always 1"),
    Mutant("memorization_percentile_10", "bench/evaluate/memorization.py",
           "QUANTILE = 0.05", "QUANTILE = 0.10",
           "memorization threshold at the 10th percentile of validation->train distances", True),
    Mutant("iwae_without_log_k", "bench/models/cnn_decoder.py",
           "log_p = torch.logsumexp(log_w, dim=0) - math.log(k)", "log_p = torch.logsumexp(log_w, dim=0)",
           "IWAE bound without its - log k (VAE bits/dim too low)", True),
    Mutant("fid_on_standardized_features", "bench/evaluate/reference.py",
           '"fid": fm.frechet_distance(identity, ref.features, feats),',
           '"fid": fm.frechet_distance(identity, ref.standardized(ref.features), ref.standardized(feats)),',
           "headline FID on the standardized features meant for KID", True),
    Mutant("checkpoint_by_highest_val_bpd", "bench/fitting.py",
           'monitor=module.selection_metric, mode="min"', 'monitor=module.selection_metric, mode="max"',
           "evaluated checkpoint chosen by the highest validation bits/dim", True),
    Mutant("kid_on_raw_features", "bench/evaluate/reference.py",
           "fm.kernel_distance(identity, ref.standardized(ref.features), ref.standardized(feats),",
           "fm.kernel_distance(identity, ref.features, feats,",
           "KID on raw instead of standardized features"),
    Mutant("kid_half_subsets", "bench/evaluate/feature_metrics.py",
           "size = min(subset_size, len(real), len(fake))", "size = min(subset_size, len(real), len(fake)) // 2",
           "KID subsets half the size the protocol records"),
    Mutant("inception_score_10_splits", "bench/evaluate/reference.py",
           "fm.inception_score(fm.Precomputed(logits.shape[1]), logits, seed, p.is_splits)",
           "fm.inception_score(fm.Precomputed(logits.shape[1]), logits, seed, 10)",
           "Inception Score over 10 splits instead of the protocol's"),
    Mutant("prdc_k_3", "bench/evaluate/reference.py",
           "**prdc(ref.features, feats, p.pr_k),", "**prdc(ref.features, feats, 3),",
           "precision/recall/density/coverage with k=3 instead of the protocol's k"),
    Mutant("floor_from_test_split", "bench/evaluate/reference.py",
           "images = ref.train[order[:n]]", "images = ref.images[order[:n]]",
           "data floor drawn from the reference (test) split instead of train"),
    Mutant("vae_bits_in_nats", "bench/models/cnn_decoder.py",
           "LOG2 = math.log(2.0)", "LOG2 = 1.0",
           "VAE bits/dim in nats (log base e)"),
    Mutant("token_bits_per_image", "bench/models/pixel_tokens.py",
           "return nats.mean(dim=1) / math.log(2.0)", "return nats.sum(dim=1) / math.log(2.0)",
           "RNN/GPT bits/dim summed over pixels instead of divided by dims"),
    Mutant("elbo_kl_doubled", "bench/models/cnn_decoder.py",
           "kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)",
           "kl = (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)",
           "VAE ELBO with the KL term doubled"),
    Mutant("headline_bpd_is_elbo", "bench/evaluate/likelihood.py",
           '"bits_per_dim": iwae if iwae is not None else nll,', '"bits_per_dim": nll,',
           "VAE headline bits/dim is the ELBO, not the IWAE bound"),
    Mutant("quantize_floor", "bench/data/spec.py",
           "x = torch.round(x.clamp(0.0, 1.0) * (levels - 1))", "x = torch.floor(x.clamp(0.0, 1.0) * (levels - 1))",
           "continuous samples quantized by flooring instead of rounding"),
    Mutant("to_unit_by_levels", "bench/data/spec.py",
           "return x.to(torch.float32) / (levels - 1)", "return x.to(torch.float32) / levels",
           "pixel intensities divided by levels instead of levels - 1"),
    Mutant("samples_seen_doubled", "bench/budget.py",
           "self.samples_seen += len(batch[0])", "self.samples_seen += 2 * len(batch[0])",
           "samples-seen budget counts every image twice"),
    Mutant("lr_cosine_to_zero", "bench/models/base.py",
           "return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress))",
           "return 0.5 * (1.0 + math.cos(math.pi * progress))",
           "cosine learning rate ends at 0 instead of 2% of the base"),
    Mutant("lr_schedule_not_applied", "bench/budget.py",
           'group["lr"] = group["initial_lr"] * factor', 'group["lr"] = group["initial_lr"]',
           "the optimizer never follows the learning-rate schedule"),
    Mutant("kl_warmup_ignores_its_length", "bench/models/cnn_decoder.py",
           "beta = min(1.0, budget.fraction / self.kl_warmup_fraction)", "beta = min(1.0, budget.fraction)",
           "KL warm-up over the whole budget instead of its configured fraction"),
    Mutant("eval_time_in_budget", "bench/fitting.py",
           "callbacks: list[pl.Callback] = [budget, *extra_callbacks, FlushLogsOnCheckpoint()]",
           "callbacks: list[pl.Callback] = [*extra_callbacks, budget, FlushLogsOnCheckpoint()]",
           "the quality curve's evaluation time counted as training time"),
    Mutant("best_checkpoint_not_loaded", "bench/fitting.py",
           'module.load_state_dict(state["state_dict"])', 'state.get("state_dict")',
           "the last weights are scored while the record names the best checkpoint"),
    Mutant("nan_loss_never_checked", "bench/budget.py",
           "finite = not checks or bool(torch.stack([c.cpu() for c in checks]).all())",
           "finite = True",
           "non-finite losses or weights never mark the run as diverged"),
]


def tracked_files(repo: Path) -> list[str]:
    """Files git would commit: tracked ones and untracked ones that are not ignored."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=repo,
                         capture_output=True, text=True, check=True).stdout
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


def run_suite(copy: Path, pytest_args: list[str], timeout: float) -> tuple[str, float, str]:
    """('passed' | 'failed' | 'timeout', seconds, the first failing test or the last output line)."""
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}  # no stale .pyc
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *pytest_args]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - started, f"no result after {timeout:.0f} s"
    seconds = time.perf_counter() - started
    output = done.stdout + done.stderr
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", output, flags=re.MULTILINE)
    lines = [line for line in output.splitlines() if line.strip()]
    detail = failed[0] if failed else (lines[-1] if lines else "")
    return ("passed" if done.returncode == 0 else "failed"), seconds, detail


def evaluate(mutant: Mutant, copy: Path, files: list[str], pytest_args: list[str], timeout: float) -> dict:
    target = resolve(mutant, files)
    row = {"mutant": mutant, "file": target or mutant.path}
    if target is None:
        return {**row, "status": "stale", "seconds": 0.0, "detail": "file not found"}
    path = copy / target
    source = path.read_text()
    if source.count(mutant.original) != 1:
        return {**row, "status": "stale", "seconds": 0.0,
                "detail": f"original line found {source.count(mutant.original)} times, expected once"}
    try:
        path.write_text(source.replace(mutant.original, mutant.replacement))
        outcome, seconds, detail = run_suite(copy, pytest_args, timeout)
    finally:
        path.write_text(source)
    status = {"passed": "missed", "failed": "caught", "timeout": "caught (timeout)"}[outcome]
    return {**row, "status": status, "seconds": seconds, "detail": detail}


def report(rows: list[dict], pytest_args: list[str], baseline_seconds: float | None) -> str:
    applied = [r for r in rows if r["status"] != "stale"]
    caught = [r for r in applied if r["status"].startswith("caught")]
    width = max(len(r["mutant"].name) for r in rows)
    lines = [
        f"# mutants.py — {datetime.now(timezone.utc).isoformat(timespec='seconds')} on {platform.node()}",
        f"# suite: python -m pytest -q -x -p no:cacheprovider {shlex.join(pytest_args)}".rstrip(),
        f"# baseline (no mutant): {'skipped' if baseline_seconds is None else f'passed in {baseline_seconds:.0f} s'}",
        "",
    ]
    for r in rows:
        m = r["mutant"]
        tag = " [issue 9]" if m.from_issue else ""
        lines.append(f"{m.name:<{width}}  {r['status']:<16} {r['seconds']:6.0f} s  {r['file']}: {m.description}{tag}")
        lines.append(f"{'':<{width}}  -> {r['detail']}")
    stale = len(rows) - len(applied)
    lines += ["", f"score: {len(caught)}/{len(applied)} caught" + (f" ({stale} stale, not counted)" if stale else "")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], help="mutant name(s), comma-separated or repeated")
    parser.add_argument("--pytest-args", default="", help="extra pytest arguments, e.g. a test selection")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per suite run (a timeout is caught)")
    parser.add_argument("--list", action="store_true", help="list the mutants (and whether each applies)")
    parser.add_argument("--skip-baseline", action="store_true", help="do not run the unmutated suite first")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    if args.list:
        files = tracked_files(REPO)
        for m in MUTANTS:
            target = resolve(m, files)
            found = target is not None and (REPO / target).read_text().count(m.original) == 1
            print(f"{m.name:<32} {'applies' if found else 'STALE  '} {target or m.path}: {m.description}")
        return 0
    wanted = {name for item in args.only for name in item.split(",") if name}
    unknown = wanted - {m.name for m in MUTANTS}
    if unknown:
        print(f"error: --only {', '.join(sorted(unknown))}: expected names from --list", file=sys.stderr)
        return 2
    mutants = [m for m in MUTANTS if not wanted or m.name in wanted]
    pytest_args = shlex.split(args.pytest_args)

    files = tracked_files(REPO)
    with tempfile.TemporaryDirectory(prefix="bench-mutants-") as tmp:
        copy = Path(tmp) / "repo"
        copy_tree(REPO, files, copy)
        baseline_seconds = None
        if not args.skip_baseline:
            outcome, baseline_seconds, detail = run_suite(copy, pytest_args, args.timeout)
            print(f"baseline: {outcome} in {baseline_seconds:.0f} s", flush=True)
            if outcome != "passed":
                print(f"error: the unmutated suite does not pass ({detail}); fix it before scoring mutants",
                      file=sys.stderr)
                return 1
        rows = []
        for mutant in mutants:
            row = evaluate(mutant, copy, files, pytest_args, args.timeout)
            print(f"{mutant.name}: {row['status']} ({row['seconds']:.0f} s) {row['detail']}", flush=True)
            rows.append(row)
    text = report(rows, pytest_args, baseline_seconds)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text, end="")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
