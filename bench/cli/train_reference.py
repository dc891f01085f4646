"""Train the shipped digits reference classifier: `python -m bench.cli.train_reference`.

Writes `bench/evaluate/assets/digits_classifier.pt` and a JSON beside it holding the split hash,
the weights hash, test accuracy, feature rank on the test split, architecture and seed. Run it
only when the protocol version changes: new weights mean new numbers.
"""

from __future__ import annotations

import argparse
import json

import torch

from bench.core.atomic import write_json_atomic
from bench.core.errors import BenchError, exit_on_user_error
from bench.data import ImageDataModule, to_unit
from bench.evaluate.reference.classifier import ARCHITECTURE, NUM_FEATURES, accuracy, train_classifier
from bench.evaluate.reference.extractor import CLASSIFIER_SEED, SHIPPED, file_sha256, save_atomic

#: Below this test accuracy the weights are not shipped.
MIN_ACCURACY = 0.97


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol-version", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    dm = ImageDataModule(name="digits", split_seed=0)
    net = train_classifier(dm.train_images, dm.train_labels, dm.spec, seed=CLASSIFIER_SEED)
    acc = accuracy(net, dm.test_images, dm.test_labels, dm.spec.levels)
    with torch.no_grad():
        feats = net.features(to_unit(dm.test_images, dm.spec.levels)).double()
    rank = int(torch.linalg.matrix_rank(feats - feats.mean(0)))
    if acc < MIN_ACCURACY or rank < NUM_FEATURES:
        raise BenchError(
            f"digits classifier: test accuracy {acc:.4f} (expected >= {MIN_ACCURACY}) and "
            f"feature rank {rank} (expected {NUM_FEATURES}); nothing was written"
        )
    path = SHIPPED["digits"]
    save_atomic(net.state_dict(), path)
    meta = {
        "id": f"digits:{ARCHITECTURE}:seed{CLASSIFIER_SEED}:v{args.protocol_version}",
        "dataset": "digits",
        "architecture": ARCHITECTURE,
        "seed": CLASSIFIER_SEED,
        "protocol_version": args.protocol_version,
        "num_classes": dm.spec.num_classes,
        "num_features": NUM_FEATURES,
        "split_seed": dm.spec.split_seed,
        "val_size": dm.spec.val_size,
        "test_size": dm.spec.test_size,
        "split_sha256": dm.split.sha256(),
        "weights_sha256": file_sha256(path),
        "test_accuracy": round(acc, 6),
        "feature_rank_test": rank,
        "torch_version": torch.__version__,
    }
    write_json_atomic(path.with_suffix(".json"), meta)
    path.with_suffix(".json").chmod(0o644)
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
