"""Tests of `bench.cli`: the commands' flags, bad input and disk faults, and the commands of an installed wheel."""
