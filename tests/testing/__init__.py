"""Tests of `bench.testing`: the contract kit, on every model config and on models broken on purpose."""
