"""For the tests of `bench-eval` and `bench-rescore`: a run folder as training leaves it (closed-form
model, checkpoint, samples, record) and a CLI's `main` called in-process."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from bench.core.records import write_record
from bench.evaluate.image_files import save_samples
from bench.models.baselines import IndependentPixels

#: The dataset of the runs `make_run` writes, as their record's config holds it (the `bars` fixture's set).
DATASET = {
    "name": "procedural",
    "split_seed": 0,
    "val_size": 64,
    "test_size": 64,
    "n_generated": 100,
    "source_args": {"n": 512, "size": 8, "levels": 4},
}


def run_cli(main, argv, capsys) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def make_run(tmp_path, dm):
    """A run folder as training leaves it: record, checkpoint and samples."""
    run_dir = tmp_path / "run"
    module = IndependentPixels(None, dm.spec)
    module.fit_closed_form(dm.train_images)
    (run_dir / "checkpoints").mkdir(parents=True)
    torch.save(
        {"state_dict": module.state_dict(), "bench": {"family": "independent_pixels"}},
        run_dir / "checkpoints" / "best.ckpt",
    )
    samples = module.sample(100, generator=torch.Generator().manual_seed(0))
    save_samples(run_dir, samples, dm.spec.levels)
    model = OmegaConf.to_container(OmegaConf.load("bench/conf/model/independent_pixels.yaml"))
    write_record(
        run_dir,
        {
            "status": "completed",
            "config": {"dataset": DATASET, "model": model},
            "checkpoint": {"selected": "checkpoints/best.ckpt"},
            "metrics": {"fid": -1.0, "bits_per_dim": 1.5, "bits_per_dim_kind": "exact"},
        },
    )
    return run_dir, samples
