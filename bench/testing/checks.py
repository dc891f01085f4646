"""The contract checks, one function each; `bench.testing.kit` says which apply to which model.

Checks that need to enumerate images build the model on a tiny dataset spec (1x2x2 with 3 levels:
81 possible images; 1x4x4 with 2 levels for models that need sides divisible by 4). Each raises
`AssertionError` with a sentence saying what was reached.
"""

from __future__ import annotations

import io
import math

import torch
from scipy import stats

from bench.data.spec import DatasetSpec
from bench.models.base import LIKELIHOOD_KINDS, GenerativeModule

TINY_SPECS = ((1, 2, 2, 3), (1, 4, 4, 2))  # channels, height, width, levels: tried in order
MAX_ENUMERATED = 4096  # above this many possible images, probability mass is estimated by Monte Carlo


def tiny_spec(channels: int = 1, height: int = 2, width: int = 2, levels: int = 3) -> DatasetSpec:
    """A `DatasetSpec` for unit tests (no data behind it): build a model with `cls(net, spec)`."""
    return DatasetSpec("tiny", channels, height, width, levels, split_seed=0, train_size=8, val_size=0, test_size=0)


def all_images(spec: DatasetSpec) -> torch.Tensor:
    """Every image the spec allows, uint8 `[levels ** dims, C, H, W]` (index = base-`levels` digits)."""
    index = torch.arange(spec.levels ** spec.dims)
    digits = (index[:, None] // spec.levels ** torch.arange(spec.dims)) % spec.levels
    return digits.to(torch.uint8).view(-1, *spec.shape)


def image_index(images: torch.Tensor, levels: int) -> torch.Tensor:
    """The `all_images` index of each uint8 image `[N, C, H, W]`, `[N]` int64."""
    flat = images.flatten(1).long()
    return (flat * levels ** torch.arange(flat.shape[1])).sum(1)


def tiny_batch(spec: DatasetSpec, n: int = 8, seed: int = 0) -> torch.Tensor:
    """`n` images from three prototypes (a skewed distribution a model can learn in a few steps)."""
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.randint(0, spec.levels, (3, *spec.shape), generator=g, dtype=torch.uint8)
    return prototypes[torch.arange(n) % 3]


def training_style(model: GenerativeModule) -> str:
    """'closed_form' (fitted by counting), 'gradient' (minimises `training_loss`) or 'manual'
    (its own `training_step` with manual optimization, e.g. a GAN)."""
    if getattr(model, "fits_in_closed_form", False):
        return "closed_form"
    return "gradient" if model.automatic_optimization else "manual"


def log2_probabilities(model: GenerativeModule, images: torch.Tensor, repeats: int = 1) -> torch.Tensor:
    """log2 of each uint8 image's probability `[N]` from `nll_bits_per_dim` (averaged over
    `repeats` calls for stochastic bounds), float64, in eval mode (dropout would unnormalize it)."""
    model.eval()
    with torch.no_grad():
        bpd = torch.stack([torch.cat([model.nll_bits_per_dim(chunk) for chunk in images.split(1024)])
                           for _ in range(repeats)]).to(torch.float64).mean(0)
    return -bpd * model.spec.dims


def fit_briefly(model: GenerativeModule, batch: torch.Tensor, steps: int = 30, lr: float | None = None) -> list[float]:
    """A few training steps on uint8 `batch` (closed-form models are fitted); returns the losses."""
    style = training_style(model)
    if style == "closed_form":
        model.fit_closed_form(batch)
        return []
    if style == "manual":
        return []
    opt = torch.optim.Adam(model.parameters(), lr=lr or getattr(model, "lr", 1e-3))
    losses = []
    model.train()
    for _ in range(steps):
        loss = model.training_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return [float(v) for v in torch.stack(losses)]  # one host sync, after the loop


# ---- the checks ------------------------------------------------------------------------------
def check_sample_contract(model: GenerativeModule, n: int = 5, expect_variety: bool = True) -> None:
    """All models. `sample` returns uint8 `[n, C, H, W]` on the CPU within the levels, reproducible
    under a seeded generator, different under another seed (unless `expect_variety` is False),
    and leaves the global RNG alone."""
    spec = model.spec
    state = torch.get_rng_state()
    a = model.sample(n, torch.Generator().manual_seed(1))
    b = model.sample(n, torch.Generator().manual_seed(1))
    c = model.sample(n, torch.Generator().manual_seed(2))
    assert torch.equal(state, torch.get_rng_state()), "sample() must draw from its generator, not the global RNG"
    assert a.shape == (n, *spec.shape), f"expected shape {(n, *spec.shape)}, got {tuple(a.shape)}"
    assert a.dtype == torch.uint8 and a.device.type == "cpu", f"expected uint8 on cpu, got {a.dtype} on {a.device}"
    assert int(a.max()) < spec.levels, f"sample values must be below levels={spec.levels}, got {int(a.max())}"
    assert torch.equal(a, b), "the same seeded generator must give the same samples"
    assert not expect_variety or not torch.equal(a, c), "another seed must give other samples"
    assert model.likelihood in LIKELIHOOD_KINDS, f"likelihood must be one of {LIKELIHOOD_KINDS}"


def check_checkpoint_round_trip(model: GenerativeModule, fresh: GenerativeModule) -> None:
    """All models. Weights saved from `model` and loaded (`weights_only=True`) into `fresh` (same
    config, other init) sample identically."""
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict()}, buffer)
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer, weights_only=True)["state_dict"])
    assert torch.equal(model.sample(4, torch.Generator().manual_seed(3)),
                       fresh.sample(4, torch.Generator().manual_seed(3))), "reloaded weights sample differently"


def check_likelihood_normalized(model: GenerativeModule, tolerance: float = 1e-4) -> None:
    """`exact`: the probabilities of all images sum to 1 within `tolerance`; `bound`: to at most
    1 (+ `tolerance` and Monte-Carlo error where the images are too many to enumerate)."""
    spec, images = model.spec, all_images(model.spec)
    repeats = 1 if model.likelihood == "exact" else 8
    if len(images) <= MAX_ENUMERATED:
        total, error = float(log2_probabilities(model, images, repeats).exp2().sum()), 0.0
    else:
        g = torch.Generator().manual_seed(0)
        drawn = images[torch.randint(0, len(images), (MAX_ENUMERATED,), generator=g)]
        p = log2_probabilities(model, drawn, repeats).exp2() * len(images)
        total, error = float(p.mean()), 3 * float(p.std()) / math.sqrt(len(p))
    where = f"over the {len(images)} images of a {'x'.join(map(str, spec.shape))} spec with {spec.levels} levels"
    if model.likelihood == "exact":
        assert abs(total - 1) <= tolerance + error, f"exp(-nll) sums to {total:.6f} {where}; an exact likelihood sums to 1"
    else:
        assert total <= 1 + tolerance + error, f"exp(-bound) sums to {total:.6f} {where}; a bound sums to at most 1"


def check_bpd_below_uniform(model: GenerativeModule, steps: int = 30) -> None:
    """`exact` and `bound`: after a few training steps on a tiny batch, `nll_bits_per_dim` of that
    batch is finite and below the uniform distribution's log2(levels)."""
    batch = tiny_batch(model.spec)
    fit_briefly(model, batch, steps)
    model.eval()
    with torch.no_grad():
        bpd = model.nll_bits_per_dim(batch)
    uniform = math.log2(model.spec.levels)
    assert bpd.shape == (len(batch),), f"nll_bits_per_dim must return one value per image, got {tuple(bpd.shape)}"
    assert bool(torch.isfinite(bpd).all()), f"nll_bits_per_dim is not finite after {steps} steps: {bpd.tolist()}"
    assert float(bpd.mean()) < uniform, (f"after {steps} steps on a tiny batch, bits/dim is {float(bpd.mean()):.3f}, "
                                         f"not below the uniform {uniform:.3f}")


def check_samples_follow_likelihood(model: GenerativeModule, n: int = 4000, min_p_value: float = 1e-4) -> None:
    """`exact`: at temperature 1, `sample()` draws from the distribution `nll_bits_per_dim` scores
    (chi-square goodness of fit over all images of the tiny spec, after a brief fit)."""
    fit_briefly(model, tiny_batch(model.spec))
    model.eval()
    images = all_images(model.spec)
    expected = log2_probabilities(model, images).exp2()
    expected = expected / expected.sum()
    counts = torch.bincount(image_index(model.sample(n, torch.Generator().manual_seed(0)), model.spec.levels),
                            minlength=len(images)).to(torch.float64)
    tv = 0.5 * float((counts / n - expected).abs().sum())
    big = expected * n >= 5  # chi-square needs expected counts of at least 5: pool the rest
    observed, pooled = counts[big], expected[big] * n
    if bool((~big).any()):
        observed = torch.cat([observed, counts[~big].sum(0, keepdim=True)])
        pooled = torch.cat([pooled, expected[~big].sum(0, keepdim=True) * n])
    if float(pooled[-1]) <= 0:  # images scored impossible were drawn
        p_value = 0.0 if float(observed[-1]) > 0 else 1.0
    else:
        p_value = float(stats.chisquare(observed.numpy(), pooled.numpy()).pvalue) if len(observed) > 1 else 1.0
    assert p_value >= min_p_value, (f"samples do not follow the likelihood: chi-square p = {p_value:.2g} over {n} "
                                    f"samples, total variation {tv:.3f} between sample frequencies and exp(-nll)")


def check_loss_falls(model: GenerativeModule, steps: int = 20) -> None:
    """Gradient-trained models: `training_loss` on a tiny batch (same random draws before and
    after) falls within a few steps."""
    batch = tiny_batch(model.spec)

    def loss() -> float:
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(0)
            return float(model.training_loss(batch))

    before = loss()
    fit_briefly(model, batch, steps)
    after = loss()
    assert math.isfinite(after) and after < before, (f"training loss went from {before:.4f} to {after:.4f} in {steps} "
                                                     "steps on a tiny batch; expected it to fall")


def check_memorizes_one_image(model: GenerativeModule, image: torch.Tensor, lr: float = 3e-2,
                              max_steps: int = 3000, probability: float = 0.9, n_samples: int = 64) -> None:
    """`exact`, gradient-trained: a model fitted to one uint8 image `[1, C, H, W]` gives it
    `probability` and samples it back as often as that probability says (binomial 1e-4 quantile
    of `n_samples`). Fitting stops once the probability is reached, so free per-pixel logits
    (many small Adam steps) and deep nets (few) both pass with the defaults."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    batch = image.expand(2, -1, -1, -1)
    dims = model.spec.dims
    target = -math.log2(probability) / dims  # bits/dim at which the image has that probability
    steps, loss = 0, torch.tensor(float("inf"))
    while steps < max_steps:
        for _ in range(25):  # one host sync per 25 steps
            loss = model.nll_bits_per_dim(batch).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        steps, loss = steps + 25, loss.detach()
        if float(loss) < target or not math.isfinite(float(loss)):
            break
    reached = f"after {steps} steps the loss is {float(loss):.4g} bits/dim (image probability {2 ** (-float(loss) * dims):.3f})"
    assert float(loss) < target, f"did not memorize one image: {reached}; expected probability > {probability}"
    samples = model.sample(n_samples, torch.Generator().manual_seed(0))
    exact = int((samples == image).flatten(1).all(1).sum())
    expected = int(stats.binom.ppf(1e-4, n_samples, probability))
    assert exact >= expected, (f"only {exact} of {n_samples} samples reproduce the memorized image, expected at "
                               f"least {expected} ({reached})")
