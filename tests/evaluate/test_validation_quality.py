"""The sample-quality selection statistic (protocol v5): validation images score near zero, noise far
from it, the same weights score the same at every validation, and the test split is never read."""

from __future__ import annotations

import pytest
import torch

from bench.data import ImageDataModule
from bench.evaluate.validation_quality import ValidationQuality
from tests.helpers.sealed_test_split import seal


class Draws:
    """A stand-in generator: `sample(n)` returns `n` of `images`, chosen by the generator it is given."""

    device = torch.device("cpu")

    def __init__(self, images: torch.Tensor):
        self.images = images

    def sample(self, n, generator=None):
        return self.images[torch.randint(len(self.images), (n,), generator=generator)]


@pytest.fixture(scope="module")
def sealed_digits():
    class Sealed(ImageDataModule):
        pass

    seal(Sealed)
    return Sealed("digits")


@pytest.mark.parametrize("statistic", ["fid", "kid"])
def test_validation_images_score_near_zero_and_noise_far_from_it(sealed_digits, statistic):
    dm = sealed_digits
    quality = ValidationQuality(dm, {"selection_statistic": statistic, "selection_n": 300})
    quality.setup(None, Draws(dm.val_images), "fit")
    real = quality.measure(Draws(dm.val_images))
    train = quality.measure(Draws(dm.train_images))
    noise = quality.measure(Draws(torch.randint(0, dm.spec.levels, (300, *dm.spec.shape), dtype=torch.uint8)))
    assert quality.monitor == f"val/{statistic}"
    assert real < train < noise and noise > 10 * max(abs(train), 1e-3)
    assert quality.measure(Draws(dm.train_images)) == train  # same seed at every validation


def test_an_unknown_selection_statistic_is_one_line():
    from bench.config.protocol import Protocol
    from bench.core.errors import ConfigError

    with pytest.raises(ConfigError, match="protocol.selection_statistic"):
        Protocol(selection_statistic="is")
    with pytest.raises(ConfigError, match="protocol.selection_n"):
        Protocol(selection_n=1)
