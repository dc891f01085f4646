"""Open a generated report.html in headless Chromium: the tables are in the DOM and the page draws."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.report import build_report
from tests.helpers.browser import find_chromium
from tests.helpers.report_records import make_run

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def _run(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=90, check=False
    )


@pytest.mark.browser
def test_report_renders_in_chromium(tmp_path):
    binary = find_chromium()  # the `browser` marker's hook has skipped (or, under CI=true, failed) without one
    runs = tmp_path / "runs"
    for seed, fid in enumerate([10.0, 12.0]):
        make_run(runs, "gpt", seed, fid=fid, curve=[(1, 80.0), (4, 30.0 + seed)])
        make_run(runs, "gan", seed, fid=fid + 20, bpd=None)
    make_run(runs, "rnn", 0, status="failed", message="RuntimeError: injected")
    page = build_report(runs).html.as_uri()

    dom = _run(binary, tmp_path / "profile-dom", "--dump-dom", page)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert html.count("<table") >= 5
    for text in ("<td>gpt</td>", "<td>gan</td>", "data floor (real train images)", "RuntimeError: injected"):
        assert text in html
    assert html.count('src="data:image/png;base64,') == 4  # 2 plots + 2 sample grids

    shot = tmp_path / "shot.png"
    result = _run(binary, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1200,1600", page)
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.std() > 10  # text, tables and plots, not a blank page
    dark = (pixels < 128).mean()
    assert 0.005 < dark < 0.5
