"""The contract checks, one function each; `bench.testing.kit` says which apply to which model.

Checks that need to enumerate images build the model on a tiny dataset spec (1x2x2 with 3 levels:
81 possible images; 1x4x4 with 2 levels for models that need sides divisible by 4); conditional
models on the same shapes with `CONDITIONAL_CLASSES` classes. Each raises `AssertionError` with a
sentence saying what was reached.
"""

from __future__ import annotations

import io
import math

import torch
from scipy import stats

from bench.core.errors import BenchError
from bench.data.spec import DatasetSpec
from bench.evaluate.scored_sampling import with_guidance
from bench.models.base import LIKELIHOOD_KINDS, GenerativeModule, labels_for

TINY_SPECS = ((1, 2, 2, 3), (1, 4, 4, 2))  # channels, height, width, levels: tried in order
MAX_ENUMERATED = 4096  # above this many possible images, probability mass is estimated by Monte Carlo
CONDITIONAL_CLASSES = 2  # classes of the tiny specs that conditional models are checked on


def tiny_spec(channels: int = 1, height: int = 2, width: int = 2, levels: int = 3, num_classes: int = 0) -> DatasetSpec:
    """A `DatasetSpec` for unit tests (no data behind it): build a model with `cls(net, spec)`;
    `num_classes >= 2` for conditional models."""
    return DatasetSpec(
        "tiny",
        channels,
        height,
        width,
        levels,
        split_seed=0,
        train_size=8,
        val_size=0,
        test_size=0,
        num_classes=num_classes,
    )


def images_at(index: torch.Tensor, spec: DatasetSpec) -> torch.Tensor:
    """The images of `all_images` at int64 `index` `[N]`, uint8 `[N, C, H, W]`."""
    digits = (index[:, None] // spec.levels ** torch.arange(spec.dims)) % spec.levels
    return digits.to(torch.uint8).view(-1, *spec.shape)


def all_images(spec: DatasetSpec) -> torch.Tensor:
    """Every image the spec allows, uint8 `[levels ** dims, C, H, W]` (index = base-`levels` digits)."""
    return images_at(torch.arange(spec.levels**spec.dims), spec)


def image_index(images: torch.Tensor, levels: int) -> torch.Tensor:
    """The `all_images` index of each uint8 image `[N, C, H, W]`, `[N]` int64."""
    flat = images.flatten(1).long()
    return (flat * levels ** torch.arange(flat.shape[1])).sum(1)


def tiny_batch(spec: DatasetSpec, n: int = 8, seed: int = 0) -> torch.Tensor:
    """`n` images from three prototypes (a skewed distribution a model can learn in a few steps)."""
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.randint(0, spec.levels, (3, *spec.shape), generator=g, dtype=torch.uint8)
    return prototypes[torch.arange(n) % 3]


def prototype_batch(spec: DatasetSpec, n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` labelled images, uint8 `[n, C, H, W]` and int64 `[n]`: every image of class c is
    class c's prototype, and the prototypes differ (rows `0..num_classes-1` are the prototypes)."""
    g = torch.Generator().manual_seed(seed)
    count = spec.levels**spec.dims
    if count <= 2**20:
        prototypes = images_at(torch.randperm(count, generator=g)[: spec.num_classes], spec)
    else:  # so many possible images that random ones differ
        prototypes = torch.randint(0, spec.levels, (spec.num_classes, *spec.shape), generator=g, dtype=torch.uint8)
    labels = labels_for(n, spec.num_classes)
    return prototypes[labels], labels


def training_style(model: GenerativeModule) -> str:
    """'closed_form' (fitted by counting), 'gradient' (minimises `training_loss`) or 'manual'
    (its own `training_step` with manual optimization, e.g. a GAN)."""
    if getattr(model, "fits_in_closed_form", False):
        return "closed_form"
    return "gradient" if model.automatic_optimization else "manual"


def log2_probabilities(
    model: GenerativeModule, images: torch.Tensor, repeats: int = 1, label: int | None = None
) -> torch.Tensor:
    """log2 of each uint8 image's probability `[N]` from `nll_bits_per_dim` (given class `label`
    on a conditional model, else the marginal; averaged over `repeats` calls for stochastic
    bounds), float64, in eval mode (dropout would unnormalize it)."""
    model.eval()

    def bpd(chunk: torch.Tensor) -> torch.Tensor:
        if label is None:
            return model.nll_bits_per_dim(chunk)
        return model.nll_bits_per_dim(chunk, torch.full((len(chunk),), label, dtype=torch.int64, device=chunk.device))

    with torch.no_grad():
        bpd = (
            torch.stack([torch.cat([bpd(chunk) for chunk in images.split(1024)]) for _ in range(repeats)])
            .to(torch.float64)
            .mean(0)
        )
    return -bpd * model.spec.dims


def fit_briefly(
    model: GenerativeModule,
    batch: torch.Tensor,
    steps: int = 30,
    lr: float | None = None,
    labels: torch.Tensor | None = None,
) -> list[float]:
    """A few training steps on uint8 `batch` (closed-form models are fitted); returns the losses.
    A conditional model trains on `labels` `[N]` (default: the classes in turn, 0, 1, 0, ...)."""
    if model.conditional and labels is None:
        labels = labels_for(len(batch), model.num_classes)
    style = training_style(model)
    if style == "closed_form":
        if labels is None:
            model.fit_closed_form(batch)
        else:
            model.fit_closed_form(batch, labels=labels)
        return []
    if style == "manual":
        return []
    opt = torch.optim.Adam(model.parameters(), lr=lr or getattr(model, "lr", 1e-3))
    losses = []
    model.train()
    for _ in range(steps):
        loss = model.training_loss(batch) if labels is None else model.training_loss(batch, labels)
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


def varied_batch(spec: DatasetSpec, n: int = 64, seed: int = 0) -> torch.Tensor:
    """`n` uniformly random uint8 images `[n, C, H, W]` (all different on a spec with many levels):
    a training set that leaves a closed-form model room to vary."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, spec.levels, (n, *spec.shape), generator=g, dtype=torch.uint8)


def check_sample_variety(
    model: GenerativeModule, n: int = 64, min_distinct: float = 0.25, labels: torch.Tensor | None = None
) -> None:
    """All models (on a spec with many levels, where even an untrained model's small differences
    survive quantization). Samples depend on the generator and only on it: one seed gives the
    same `n` samples twice, another seed changes most of them, and at least `min_distinct * n`
    of the `n` are different images (not collapsed onto a few). A conditional model is given
    the same `labels` (int64 `[n]`) for every draw."""

    def draw(seed: int) -> torch.Tensor:
        return model.sample(n, torch.Generator().manual_seed(seed), labels)

    a, again, other = draw(1), draw(1), draw(2)
    assert torch.equal(a, again), "the same seeded generator must give the same samples"
    same_rows = int((a == other).flatten(1).all(1).sum())
    assert same_rows < n / 2, (
        f"{same_rows} of {n} samples are the same under generator seeds 1 and 2: "
        "sample() must draw its randomness from the generator it is given"
    )
    distinct = len(torch.unique(a.flatten(1), dim=0))
    assert distinct >= min_distinct * n, (
        f"only {distinct} different images among {n} samples (expected at least "
        f"{math.ceil(min_distinct * n)}): the sampler collapses onto a few images"
    )


def check_checkpoint_round_trip(model: GenerativeModule, fresh: GenerativeModule) -> None:
    """All models. Weights saved from `model` and loaded (`weights_only=True`) into `fresh` (same
    config, other init) sample identically."""
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict()}, buffer)
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer, weights_only=True)["state_dict"])
    assert torch.equal(
        model.sample(4, torch.Generator().manual_seed(3)), fresh.sample(4, torch.Generator().manual_seed(3))
    ), "reloaded weights sample differently"


def check_likelihood_normalized(model: GenerativeModule, tolerance: float = 1e-4, label: int | None = None) -> None:
    """`exact`: the probabilities of all images sum to 1 within `tolerance`; `bound`: to at most
    1 (+ `tolerance` and Monte-Carlo error where the images are too many to enumerate). With
    `label`, the probabilities given that class (a conditional model)."""
    spec, images = model.spec, all_images(model.spec)
    repeats = 1 if model.likelihood == "exact" else 8
    if len(images) <= MAX_ENUMERATED:
        total, error = float(log2_probabilities(model, images, repeats, label).exp2().sum()), 0.0
    else:
        g = torch.Generator().manual_seed(0)
        drawn = images[torch.randint(0, len(images), (MAX_ENUMERATED,), generator=g)]
        p = log2_probabilities(model, drawn, repeats, label).exp2() * len(images)
        total, error = float(p.mean()), 3 * float(p.std()) / math.sqrt(len(p))
    where = f"over the {len(images)} images of a {'x'.join(map(str, spec.shape))} spec with {spec.levels} levels"
    where += "" if label is None else f" given label {label}"
    if model.likelihood == "exact":
        assert abs(total - 1) <= tolerance + error, (
            f"exp(-nll) sums to {total:.6f} {where}; an exact likelihood sums to 1"
        )
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
    assert float(bpd.mean()) < uniform, (
        f"after {steps} steps on a tiny batch, bits/dim is {float(bpd.mean()):.3f}, not below the uniform {uniform:.3f}"
    )


def _fit_to_likelihood(model: GenerativeModule, samples: torch.Tensor, label: int | None = None) -> tuple[float, float]:
    """Chi-square p-value and total variation between uint8 `samples` and the probabilities
    `nll_bits_per_dim` gives every image of the tiny spec (given `label`, else the marginal)."""
    n, images = len(samples), all_images(model.spec)
    expected = log2_probabilities(model, images, label=label).exp2()
    expected = expected / expected.sum()
    counts = torch.bincount(image_index(samples, model.spec.levels), minlength=len(images)).to(torch.float64)
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
    return p_value, tv


def check_samples_follow_likelihood(model: GenerativeModule, n: int = 4000, min_p_value: float = 1e-4) -> None:
    """`exact`: at temperature 1, `sample()` draws from the distribution `nll_bits_per_dim` scores
    (chi-square goodness of fit over all images of the tiny spec, after a brief fit)."""
    fit_briefly(model, tiny_batch(model.spec))
    model.eval()
    p_value, tv = _fit_to_likelihood(model, model.sample(n, torch.Generator().manual_seed(0)))
    assert p_value >= min_p_value, (
        f"samples do not follow the likelihood: chi-square p = {p_value:.2g} over {n} "
        f"samples, total variation {tv:.3f} between sample frequencies and exp(-nll)"
    )


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
    assert math.isfinite(after) and after < before, (
        f"training loss went from {before:.4f} to {after:.4f} in {steps} steps on a tiny batch; expected it to fall"
    )


def check_memorizes_one_image(
    model: GenerativeModule,
    image: torch.Tensor,
    lr: float = 3e-2,
    max_steps: int = 3000,
    probability: float = 0.9,
    n_samples: int = 64,
) -> None:
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
    assert exact >= expected, (
        f"only {exact} of {n_samples} samples reproduce the memorized image, expected at least {expected} ({reached})"
    )


# ---- conditional models ------------------------------------------------------------------------
def check_conditional_sample_contract(model: GenerativeModule, n: int = 6) -> None:
    """Conditional models. `sample(n, generator, labels)` returns uint8 `[n, C, H, W]` within the
    levels, reproducible under a seeded generator, leaving the global RNG alone; without labels
    it still samples; labels of the wrong length are refused with a message naming `labels`."""
    spec, labels = model.spec, labels_for(n, model.num_classes)
    state = torch.get_rng_state()
    a = model.sample(n, torch.Generator().manual_seed(1), labels)
    b = model.sample(n, torch.Generator().manual_seed(1), labels)
    unlabelled = model.sample(n, torch.Generator().manual_seed(1))
    assert torch.equal(state, torch.get_rng_state()), (
        "sample(labels=...) must draw from its generator, not the global RNG"
    )
    assert a.shape == (n, *spec.shape) and a.dtype == torch.uint8, (
        f"sample(labels=...) must return uint8 {(n, *spec.shape)}, got {a.dtype} {tuple(a.shape)}"
    )
    assert int(a.max()) < spec.levels, f"sample values must be below levels={spec.levels}, got {int(a.max())}"
    assert torch.equal(a, b), "the same seeded generator and labels must give the same samples"
    assert unlabelled.shape == a.shape, "sample(n) on a conditional model must draw n images (labels drawn uniformly)"
    try:
        model.sample(n, torch.Generator().manual_seed(1), labels[:-1])
    except BenchError as err:
        assert "labels" in str(err), f"the message for labels of the wrong length must name `labels`: {err}"
    else:
        raise AssertionError(f"sample({n}, labels=<{n - 1} labels>) must refuse the labels with a BenchError")


def check_labels_honoured(
    model: GenerativeModule, probability: float = 0.75, lr: float = 3e-2, max_steps: int = 2000, n_samples: int = 64
) -> None:
    """Conditional models fitted by gradient or in closed form. Fitted to a set where every image
    of class c is c's prototype (`prototype_batch`), the model gives each prototype `probability`
    given its class (likelihood models; gradient fitting stops once it does) and samples of
    label c are c's prototype as often as that says (binomial 1e-4 quantile of `n_samples`)."""
    spec, k = model.spec, model.num_classes
    images, labels = prototype_batch(spec)
    prototypes, classes = images[:k], labels[:k]
    style = training_style(model)

    def own_probability() -> torch.Tensor:  # p(prototype c | c), [K]
        model.eval()
        with torch.no_grad():
            return (-model.nll_bits_per_dim(prototypes, classes).to(torch.float64) * spec.dims).exp2()

    steps, reached = 0, ""
    if style == "closed_form":
        model.fit_closed_form(images, labels=labels)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        while steps < max_steps and bool((own_probability() < probability).any()):
            model.train()
            for _ in range(25):
                loss = model.training_loss(images, labels)
                opt.zero_grad()
                loss.backward()
                opt.step()
            steps += 25
        reached = f"after {steps} steps "
    if model.likelihood != "none":
        p = own_probability()
        reached += f"p(prototype c | c) = {[round(float(v), 3) for v in p]}"
        assert bool((p >= probability).all()), (
            f"did not learn to tell the classes apart: {reached}; expected at least {probability} for each class"
        )
    asked = torch.arange(k).repeat_interleave(n_samples)
    samples = model.sample(len(asked), torch.Generator().manual_seed(0), asked)
    own = (samples == prototypes[asked]).flatten(1).all(1)
    counts = [int(own[asked == c].sum()) for c in range(k)]
    expected = int(stats.binom.ppf(1e-4, n_samples, probability))
    assert min(counts) >= expected, (
        f"samples do not follow their labels: of {n_samples} samples per label, {counts} are that class's "
        f"prototype, expected at least {expected} each ({reached})"
    )


def check_conditional_likelihood_normalized(model: GenerativeModule, tolerance: float = 1e-4) -> None:
    """Conditional `exact` / `bound` models: for every label, the probabilities of all images
    given it sum to 1 (at most 1 for a bound), and so does the marginal (no labels)."""
    for label in [*range(model.num_classes), None]:
        check_likelihood_normalized(model, tolerance, label)


def check_conditional_samples_follow_likelihood(
    model: GenerativeModule, n: int = 2000, min_p_value: float = 1e-4, weight: float = 2.0
) -> None:
    """Conditional `exact` models: after a brief fit, the samples of each label follow p(x | label)
    (chi-square over all images of the tiny spec). A model with guidance is set to guidance
    `weight` and sampled under the scoring options (`with_guidance(model, 0)`): scored samples
    are plain conditional samples."""
    fit_briefly(model, tiny_batch(model.spec))
    model.eval()
    saved = model.guidance
    for label in range(model.num_classes):
        asked = torch.full((n,), label, dtype=torch.int64)
        try:
            model.guidance = weight if model.supports_guidance else 0.0
            with with_guidance(model, 0.0):
                samples = model.sample(n, torch.Generator().manual_seed(label), asked)
        finally:
            model.guidance = saved
        p_value, tv = _fit_to_likelihood(model, samples, label)
        assert p_value >= min_p_value, (
            f"samples of label {label} do not follow the conditional likelihood: chi-square p = {p_value:.2g} over "
            f"{n} samples, total variation {tv:.3f} between sample frequencies and exp(-nll given the label)"
        )


def check_guidance_zero_is_plain_sampling(
    model: GenerativeModule, weight: float = 2.0, n: int = 32, vanishing: float = 1e-6
) -> None:
    """Conditional models with guidance. Under the same seed: a model set to guidance `weight`
    draws, with the scoring options at w = 0 (`with_guidance(model, 0)`), exactly the plain
    conditional samples; the guided path reduces to them as w -> 0 (at w = `vanishing` it draws
    the same images: its conditional stream is the plain one and it uses the generator alike);
    guided samples are reproducible and within the levels."""
    labels, saved = labels_for(n, model.num_classes), model.guidance

    def draw() -> torch.Tensor:
        return model.sample(n, torch.Generator().manual_seed(5), labels)

    try:
        model.guidance = 0.0
        plain = draw()
        model.guidance = vanishing
        nearly_plain = draw()
        model.guidance = weight
        guided, again = draw(), draw()
        with with_guidance(model, 0.0):
            unguided = draw()
    finally:
        model.guidance = saved
    assert torch.equal(unguided, plain), (
        f"samples of a model set to guidance {weight} differ, under "
        "with_guidance(model, 0), from plain conditional samples (same seed)"
    )
    changed = int((nearly_plain != plain).flatten(1).any(1).sum())
    assert changed == 0, (
        f"guided samples at w = {vanishing} differ from plain conditional samples in {changed} of "
        f"{n} images (same seed): guidance must reduce to conditional sampling as w -> 0"
    )
    assert torch.equal(guided, again), f"guided samples (w = {weight}) differ under the same seed"
    assert guided.shape == plain.shape and int(guided.max()) < model.spec.levels, (
        f"guided samples must be uint8 {tuple(plain.shape)} below levels={model.spec.levels}"
    )
