"""Tests of `bench.data`: the datasets, their sources (torchvision formats, image folders) and splits."""
