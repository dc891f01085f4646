"""The reference classifier: a small CNN whose penultimate features and logits define the metrics.

Its architecture is fixed per protocol version (`ARCHITECTURE` is recorded); it is trained on a
dataset's train split with a fixed seed. Input is `bench.data.to_unit(images, levels)`.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.data.spec import DatasetSpec, to_unit

ARCHITECTURE = "cnn16-32-pool-fc64-silu"
NUM_FEATURES = 64
EPOCHS = 40  # recorded beside every cached classifier (its sidecar)


class ReferenceCNN(nn.Module):
    """conv16 - conv32 - maxpool - adaptive pool 4x4 - fc64 (features) - fc(num_classes).

    The feature layer uses SiLU rather than ReLU so no unit can die and leave the feature
    covariance singular.
    """

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.SiLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(32 * 16, NUM_FEATURES),
            nn.SiLU(),
        )
        self.head = nn.Linear(NUM_FEATURES, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """float `[N, C, H, W]` in [0, 1] -> penultimate features `[N, 64]`."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float `[N, C, H, W]` in [0, 1] -> logits `[N, num_classes]`."""
        return self.head(self.body(x))


def train_classifier(
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    spec: DatasetSpec,
    seed: int = 0,
    epochs: int = EPOCHS,
    batch_size: int = 32,
    lr: float = 2e-3,
    num_classes: int | None = None,
) -> ReferenceCNN:
    """Fit a `ReferenceCNN` on uint8 `[N, C, H, W]` images with int64 `[N]` labels.

    `num_classes` (default: the dataset's, at least 2) sizes the head; the rotation task of
    unlabelled datasets passes 4 (`bench.evaluate.reference.rotation_task`). Everything random (initialisation, batch order) draws from generators seeded by `seed`, so
    the same data gives the same weights on a machine.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # nn.Module initialisation draws from the global RNG
        net = ReferenceCNN(spec.channels, max(spec.num_classes, 2) if num_classes is None else num_classes)
    x_all = to_unit(train_images, spec.levels)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x_all), generator=gen)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            loss = nn.functional.cross_entropy(net(x_all[idx]), train_labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    return net.eval().requires_grad_(False)


@torch.no_grad()
def accuracy(net: ReferenceCNN, images: torch.Tensor, labels: torch.Tensor, levels: int) -> float:
    """Share of uint8 `[N, C, H, W]` images classified as their label."""
    return (net(to_unit(images, levels)).argmax(1) == labels).double().mean().item()
