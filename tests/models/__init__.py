"""Tests of `bench.models`: each family, conditioning, likelihoods, and every family at real-dataset sizes."""
