"""The dataset layer: every binary task in one schema, loaded by name, split without leaks."""

from overseer.data._registry import DatasetInfo, dataset, dataset_info, list_datasets, load_dataset
from overseer.data._schema import PAIRINGS, BinaryDataset, Example, Pairing, make_dataset

__all__ = [
    "PAIRINGS",
    "BinaryDataset",
    "DatasetInfo",
    "Example",
    "Pairing",
    "dataset",
    "dataset_info",
    "list_datasets",
    "load_dataset",
    "make_dataset",
]
