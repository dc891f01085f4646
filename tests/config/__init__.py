"""Tests of `bench.config`: composing and validating configs, the config hash, docs/config.md, plugins and
users' own config folders."""
