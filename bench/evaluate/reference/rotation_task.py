"""What the reference network learns on an unlabelled dataset: which rotation was applied.

A dataset with fewer than 2 classes (a `folder` of images at the top level, or a single
sub-folder) has nothing to classify: trained on its constant labels, the network's features
would carry no information about the images. Instead it learns to tell which of 4 rotations
(0, 90, 180, 270 degrees) an image was turned by (Gidaris et al. 2018, "Unsupervised
representation learning by predicting image rotations"); to do so it has to pick up the shapes
and orientation of what is in the images, and its 64-d penultimate features serve FID, KID and
PRDC as a classifier's do. Its logits are over rotations, not over kinds of images, so no
Inception Score comes from them.
"""

from __future__ import annotations

import torch

from bench.core.errors import BenchError
from bench.data.spec import DatasetSpec
from bench.evaluate.reference.classifier import ReferenceCNN, accuracy, train_classifier

ROTATIONS = 4
#: What the network's outputs mean, as the record states it (`protocol.extractor.classes`).
CLASSES = "rotation (unlabelled dataset)"


def is_unlabelled(spec: DatasetSpec) -> bool:
    """Fewer than 2 classes: the reference network learns rotations instead."""
    return spec.num_classes < 2


def rotations_of(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 `[N, C, S, S]` -> each image turned by k quarter turns, `[4N, C, S, S]`, and k, int64 `[4N]`.

    Images must be square: a quarter turn of a non-square image changes its shape.
    """
    if images.dim() != 4 or images.shape[-1] != images.shape[-2]:
        raise BenchError(
            f"rotation task of the reference network: expected square images [N, C, S, S], got "
            f"{list(images.shape)}; an unlabelled dataset's images must be square (dataset.size)"
        )
    turned = torch.cat([torch.rot90(images, k, dims=(-2, -1)) for k in range(ROTATIONS)])
    return turned, torch.arange(ROTATIONS).repeat_interleave(len(images))


def train_rotation_classifier(train_images: torch.Tensor, spec: DatasetSpec, seed: int = 0) -> ReferenceCNN:
    """A `ReferenceCNN` with a 4-way head fitted on every rotation of each uint8 training image.

    Each epoch sees all 4 rotations of every image, so it takes 4 times the steps of a labelled one.
    """
    turned, turns = rotations_of(train_images)
    return train_classifier(turned, turns, spec, seed=seed, num_classes=ROTATIONS)


def rotation_accuracy(net: ReferenceCNN, images: torch.Tensor, levels: int) -> float:
    """Share of the 4 rotations of uint8 `images` `[N, C, S, S]` whose turn `net` names (chance 0.25)."""
    return accuracy(net, *rotations_of(images), levels)
