"""A correct minimal family: free per-pixel logits trained by gradient, exact likelihood.

The plugin tests install this file as a plugin's family module; the contract tests break it
on purpose.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from bench.models.base import GenerativeModule


class Logits(nn.Module):
    """One free logit per pixel and level, `[C, H, W, levels]`."""

    def __init__(self, spec):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(*spec.shape, spec.levels))


class ToyPixels(GenerativeModule):
    family = "toy"
    networks = (f"{__name__}.Logits",)  # the module is installed under the test plugin's own name
    likelihood = "exact"

    def log_probs(self) -> torch.Tensor:
        return F.log_softmax(self.net.logits, -1)

    def nll_bits_per_dim(self, x):
        logp = self.log_probs().expand(len(x), *self.net.logits.shape)
        return -logp.gather(-1, x.long().unsqueeze(-1)).squeeze(-1).flatten(1).mean(1) / math.log(2)

    def generate(self, n, generator=None):
        probs = self.log_probs().exp().reshape(-1, self.spec.levels)
        return torch.multinomial(probs, n, replacement=True, generator=generator).t().reshape(n, *self.spec.shape)
