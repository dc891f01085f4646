"""Re-score a run's saved samples under the current protocol and store the new numbers in its record."""

from __future__ import annotations

from bench.config.protocol import Protocol
from bench.core.records import write_record
from bench.core.schema import LIKELIHOOD_NA
from bench.evaluate.image_files import SAMPLES_NAME, load_labels, load_samples
from bench.evaluate.score import evaluate_samples
from bench.pipeline.saved_run import SavedRun

#: bits/dim given the label: measured from the checkpoint, kept when saved samples are re-scored
GIVEN_LABEL_KEYS = ("bits_per_dim_given_label", "elbo_bits_per_dim_given_label")


def rescore_run(run: SavedRun, protocol: Protocol) -> None:
    record = run.record
    dm = run.datamodule()
    samples = load_samples(run.folder / SAMPLES_NAME, dm.spec)
    # conditional runs (protocol v3) saved the labels their samples asked for
    labels = load_labels(run.folder / SAMPLES_NAME, len(samples))
    result = evaluate_samples(samples, dm, protocol, seed=int(record.get("seed") or 0), labels=labels)
    old = record.get("metrics") or {}
    # samples carry no likelihood: keep the bits/dim measured from the checkpoint at training time
    likelihood = {k: old.get(k) for k in (*LIKELIHOOD_NA, *GIVEN_LABEL_KEYS)}
    record["metrics"] = {**result["metrics"], **{k: v for k, v in likelihood.items() if k in old}}
    record["protocol"], record["data_floor"] = result["protocol"], result["data_floor"]
    if "per_class" in result:
        record["per_class"] = result["per_class"]
    write_record(run.folder, record)
    print(f"rescored {run.folder}: fid {result['metrics']['fid']:.3f} (protocol v{protocol.version})")
