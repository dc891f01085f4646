"""Hydra sweeper of the bench project: every job that composes runs (see `bench_sweeper.py`)."""
