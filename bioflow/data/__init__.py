"""Data: sources (synthetic, CIFAR-10, image folders, CIFAR-10G), preprocessing and the pipeline."""
from bioflow.data.pipeline import DataPipeline
from bioflow.data.sources import CIFAR10, ImageFolder, Splits, Synthetic

__all__ = ["CIFAR10", "DataPipeline", "ImageFolder", "Splits", "Synthetic"]
