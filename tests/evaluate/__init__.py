"""Tests of `bench.evaluate`: the metrics, the reference networks, sampling cost, scoring and what a seed
replicates."""
