"""Standard Inception FID: computed from a local weights file, skipped (offline) without one.

The weights here are random, with the architecture of torch-fidelity's Inception-v3: the
numbers mean nothing, the path (local loading, grey -> RGB, resizing, no download) is real.
"""

from __future__ import annotations

import socket
import urllib.request

import pytest
import torch
import torch_fidelity.feature_extractor_inceptionv3 as fidelity_inception

from bench.core.errors import BenchError
from bench.data import ImageDataModule
from bench.evaluate.reference.inception import WEIGHTS_NAME, default_weights_path, inception_fid, to_inception_input


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a network access was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(fidelity_inception, "load_state_dict_from_url", refuse)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A TORCH_HOME holding random Inception-v3 weights under the standard file name."""
    home = tmp_path_factory.mktemp("torch-home")
    path = home / "hub" / "checkpoints" / WEIGHTS_NAME
    path.parent.mkdir(parents=True)
    cls = fidelity_inception.FeatureExtractorInceptionV3
    original = cls.load_state_dict
    cls.load_state_dict = lambda self, state_dict: None  # build the architecture without any weights
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            original_url = fidelity_inception.load_state_dict_from_url
            fidelity_inception.load_state_dict_from_url = lambda *a, **k: {}
            try:
                net = cls("inception-v3-compat", ["2048"])
            finally:
                fidelity_inception.load_state_dict_from_url = original_url
    finally:
        cls.load_state_dict = original
    torch.save(net.state_dict(), path)
    return home


def test_grey_levels_become_rgb_bytes(digits):
    x = to_inception_input(digits.test_images[:4], 17)
    assert x.dtype == torch.uint8 and x.shape == (4, 3, 8, 8)
    assert torch.equal(x[:, 0], x[:, 2]) and int(x.max()) == 255


def test_inception_fid_from_weights_in_torch_home(random_weights, digits, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(random_weights))
    assert default_weights_path() == random_weights / "hub" / "checkpoints" / WEIGHTS_NAME
    real = digits.test_images[:8]
    same, status = inception_fid(real, real, 17, feature=64)
    assert status == "computed" and abs(same) < 1e-6
    white = torch.full_like(real, 16)
    other, _ = inception_fid(real, white, 17, feature=64)
    assert other > 1e3 * max(abs(same), 1e-9)


def test_without_weights_it_is_skipped_without_any_download(tmp_path, digits, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    fid, status = inception_fid(digits.test_images[:8], digits.train_images[:8], 17)
    assert fid is None
    assert status == f"skipped: weights not found at {tmp_path / 'hub' / 'checkpoints' / WEIGHTS_NAME}"
    fid, status = inception_fid(digits.test_images[:8], digits.train_images[:8], 17, tmp_path / "x.pth")
    assert fid is None and str(tmp_path / "x.pth") in status


def test_a_corrupt_weights_file_is_a_clear_error(tmp_path, digits):
    bad = tmp_path / WEIGHTS_NAME
    bad.write_bytes(b"truncated")
    with pytest.raises(BenchError, match=WEIGHTS_NAME):
        inception_fid(digits.test_images[:8], digits.train_images[:8], 17, bad)


@pytest.mark.slow
def test_protocol_records_standard_fid_when_weights_exist(random_weights, monkeypatch):
    from bench.evaluate.score import evaluate_samples

    monkeypatch.setenv("TORCH_HOME", str(random_weights))
    dm = ImageDataModule(name="procedural", val_size=16, test_size=16, source_args={"n": 120})
    result = evaluate_samples(dm.val_images, dm, {"seed": 5})
    assert result["protocol"]["inception"] == "computed"
    assert result["metrics"]["fid_inception"] is not None and result["data_floor"]["fid_inception"] is not None
