"""Tests of `bench.report`: aggregation, rendering, and the page in a browser."""
