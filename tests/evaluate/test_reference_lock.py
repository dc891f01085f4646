"""Jobs started together share one reference network: the first trains it, the others wait for it."""

from __future__ import annotations

import multiprocessing
import time

import pytest
import torch

import bench.evaluate.reference.extractor as ex
from bench.config.protocol import Protocol
from bench.data import ImageDataModule
from bench.evaluate.reference_set import lock_path, reference_for

TRAINING_SECONDS = 1.0  # long enough that the second job asks while the first still trains


def _job(dm, marker, barrier, results) -> None:
    """One sweep job: ask for the reference network at the same moment as the other job."""
    torch.set_num_threads(1)
    real = ex.train_classifier

    def counted(*args, **kwargs):
        with open(marker, "a") as fh:
            fh.write("trained\n")
        time.sleep(TRAINING_SECONDS)
        return real(*args, **kwargs)

    ex.train_classifier = counted  # a forked child: the parent's module is untouched
    barrier.wait()
    ref = reference_for(dm, Protocol())
    results.put((ref.extractor.sha256, ref.extractor.info["path"]))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_two_jobs_train_an_uncached_reference_network_once(tmp_path, capfd):
    dm = ImageDataModule(name="procedural", val_size=32, test_size=32, source_args={"n": 110})
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    marker = tmp_path / "trainings.txt"
    jobs = [ctx.Process(target=_job, args=(dm, marker, barrier, results)) for _ in range(2)]
    for job in jobs:
        job.start()
    try:
        for job in jobs:
            job.join(timeout=120)
        assert [job.exitcode for job in jobs] == [0, 0]
    finally:
        for job in jobs:
            if job.is_alive():  # a job stuck waiting: leave no process behind
                job.kill()
    (sha_a, path_a), (sha_b, path_b) = results.get(timeout=5), results.get(timeout=5)
    assert marker.read_text() == "trained\n"  # trained by one job only
    assert sha_a == sha_b == ex.file_sha256(path_a) and path_a == path_b  # both measure with the cached weights
    waited = [line for line in capfd.readouterr().err.splitlines() if "waiting for another job" in line]
    assert len(waited) == 1 and str(lock_path("procedural", ex.dataset_fingerprint(dm))) in waited[0]
