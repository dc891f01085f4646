"""Contract checks every generator passes — for the suite's own tests and for plugin authors.

Each `check_*` raises AssertionError with a sentence saying what broke; call them from a test.
"""

from __future__ import annotations

import io

import torch

from bench.models.base import LIKELIHOOD_KINDS, GenerativeModule


def check_sample_contract(model: GenerativeModule, n: int = 5, expect_variety: bool = True) -> None:
    """`sample` returns uint8 `[n, C, H, W]` on the CPU within the levels, reproducible under a
    seeded generator, different under another seed (unless `expect_variety` is False), and leaves
    the global RNG alone."""
    spec = model.spec
    state = torch.get_rng_state()
    a = model.sample(n, torch.Generator().manual_seed(1))
    b = model.sample(n, torch.Generator().manual_seed(1))
    c = model.sample(n, torch.Generator().manual_seed(2))
    assert torch.equal(state, torch.get_rng_state()), "sample() must draw from its generator, not the global RNG"
    assert a.shape == (n, *spec.shape), f"expected shape {(n, *spec.shape)}, got {tuple(a.shape)}"
    assert a.dtype == torch.uint8 and a.device.type == "cpu", f"expected uint8 on cpu, got {a.dtype} on {a.device}"
    assert int(a.max()) < spec.levels, f"sample values must be below levels={spec.levels}"
    assert torch.equal(a, b), "the same seeded generator must give the same samples"
    assert not expect_variety or not torch.equal(a, c), "another seed must give other samples"
    assert model.likelihood in LIKELIHOOD_KINDS, f"likelihood must be one of {LIKELIHOOD_KINDS}"


def check_checkpoint_round_trip(model: GenerativeModule, fresh: GenerativeModule) -> None:
    """Weights saved from `model` and loaded into `fresh` (same config, other init) sample identically."""
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict()}, buffer)
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer, weights_only=False)["state_dict"])
    assert torch.equal(model.sample(4, torch.Generator().manual_seed(3)),
                       fresh.sample(4, torch.Generator().manual_seed(3))), "reloaded weights sample differently"


def check_memorizes_one_image(model: GenerativeModule, image: torch.Tensor, lr: float = 3e-2,
                              max_steps: int = 400, min_exact: int = 12) -> None:
    """A likelihood model fitted to one uint8 image `[1, C, H, W]` samples it back (at least
    `min_exact` of 16 samples exact)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    batch = image.expand(2, -1, -1, -1)
    for _ in range(max_steps):
        loss = model.nll_bits_per_dim(batch).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.detach() < 2e-3:  # the whole image then has probability > 0.9
            break
    samples = model.sample(16, torch.Generator().manual_seed(0))
    exact = int((samples == image).flatten(1).all(1).sum())
    assert exact >= min_exact, f"only {exact} of 16 samples reproduce the memorized image"
