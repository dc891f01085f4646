"""Hydra config groups of the diffusion plugin (found through the `bench.configs` entry point)."""
