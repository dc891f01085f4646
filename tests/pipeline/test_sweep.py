"""The comparison sweep end to end in a subprocess: Hydra's joblib launcher, 2 tiny families x
2 seeds on the procedural dataset; one injected failure; a re-run skips what completed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT
from tests.helpers.reference_cache import warm_reference_cache

TINY_MODELS = {
    "sweep_vae": """\
name: sweep_vae
family: cnn_decoder
batch_size: 32
module: {lr: 3e-3}
net: {_target_: tests.helpers.failing_net.select_net, target: bench.models.cnn_decoder.ConvVAENet, tag: sweep_vae,
      latent_dim: 2, hidden: 4}
""",
    "sweep_rnn": """\
name: sweep_rnn
family: rnn
batch_size: 32
module: {lr: 3e-3}
net: {_target_: tests.helpers.failing_net.select_net, target: bench.models.rnn.PixelRNNNet, tag: sweep_rnn,
      hidden: 16, layers: 1, embed_dim: 8}
""",
}


def _compare(tmp_path: Path, explode: str | None, *extra: str) -> subprocess.CompletedProcess:
    conf = tmp_path / "conf" / "model"
    conf.mkdir(parents=True, exist_ok=True)
    for name, text in TINY_MODELS.items():
        (conf / f"{name}.yaml").write_text(text)
    # the root first on the path: `tests.helpers` is this repository's, not the `tests` package
    # torch-fidelity installs; BENCH_CACHE is the session's (see conftest)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("BENCH_TEST_EXPLODE", None)
    if explode:
        env["BENCH_TEST_EXPLODE"] = explode
    overrides = [
        "experiment=compare",
        "model=sweep_vae,sweep_rnn",
        "seed=0,1",
        "dataset=procedural",
        "budget=samples",
        "budget.value=1024",
        "protocol.n_generated=64",
        "protocol.iwae_k=4",
        "protocol.kid_subsets=10",
        "threads=1",
        "logger=none",
        "progress=lines",
        f"results_dir={tmp_path / 'results'}",
        f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
        *extra,
    ]
    return subprocess.run(
        [sys.executable, "-m", "bench.cli.compare", *overrides],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _statuses(sweep: Path) -> dict[str, str]:
    return {p.parent.name.split("__")[0]: json.loads(p.read_text())["status"] for p in sweep.glob("*/result.json")}


def test_sweep_isolates_failures_and_resumes(tmp_path):
    sweep = tmp_path / "results" / "compare"
    warm_reference_cache()
    first = _compare(tmp_path, explode="sweep_rnn:1")
    log = first.stdout + first.stderr
    assert first.returncode == 1, log[-4000:]
    assert _statuses(sweep) == {
        "sweep_vae-procedural-seed0": "completed",
        "sweep_vae-procedural-seed1": "completed",
        "sweep_rnn-procedural-seed0": "completed",
        "sweep_rnn-procedural-seed1": "failed",
    }, log[-4000:]
    # two jobs ran at once, so sampling was timed after the sweep, one run at a time, and the
    # timed pass drew the very samples the job scored
    from bench.pipeline.timing_pass import PASS

    for path in sweep.glob("*/result.json"):
        record = json.loads(path.read_text())
        if record["status"] == "completed":
            measured = record["timing"]["measurement"]
            assert measured["pass"] == PASS and measured["reproduces_scored_samples"] is True, measured
            assert record["timing"]["sample_images_per_s"] > 0 and record["timing"]["latency_ms_per_image"] > 0
    assert "timing pass: sampling speed of 3 run(s), one at a time" in first.stdout, log[-4000:]
    failed = json.loads(next(sweep.glob("sweep_rnn-procedural-seed1__*/result.json")).read_text())
    assert "injected failure" in failed["message"]
    assert "not completed: sweep_rnn-procedural-seed1" in first.stdout
    report = (sweep / "report.md").read_text()
    assert "injected failure" in report and "## Runs that did not complete" in report
    assert (sweep / "report.html").exists()

    # the same configs again: completed jobs print `skip:`, the failed one runs again and now
    # completes (the same launcher: its job count is `concurrent_jobs`, which the hash covers)
    second = _compare(tmp_path, None)
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-4000:]
    skipped = sorted(line.split()[1] for line in second.stdout.splitlines() if line.startswith("skip:"))
    assert [name.split("__")[0] for name in skipped] == [
        "sweep_rnn-procedural-seed0",
        "sweep_vae-procedural-seed0",
        "sweep_vae-procedural-seed1",
    ], log[-4000:]
    assert set(_statuses(sweep).values()) == {"completed"} and len(_statuses(sweep)) == 4
    report = (sweep / "report.md").read_text()
    assert "| sweep_vae | cnn_decoder | 2 (0, 1) |" in report and "| sweep_rnn | rnn | 2 (0, 1) |" in report
    assert "4 completed run(s)" in report
