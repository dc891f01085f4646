"""Tests of `bench.core`: the records' type checks, atomic writes, and one line for each file-system fault."""
