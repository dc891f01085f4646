"""Datasets: specs, sources and the in-memory LightningDataModule."""

from bench.data.datamodule import ImageDataModule
from bench.data.spec import DatasetSpec, quantize, to_unit

__all__ = ["DatasetSpec", "ImageDataModule", "quantize", "to_unit"]
