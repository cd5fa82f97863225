"""The dataset layer: general samples and binary tasks, loaded by name from local files or the hub.

Every source becomes :class:`Sample` records (input, target, choices, id, metadata, group) in a
:class:`SampleDataset`; a binary task (:class:`BinaryDataset` of :class:`Example`) is a checked
view of samples whose targets are 0/1 (:meth:`BinaryDataset.from_samples`). Sample datasets are
registered with ``@sample_dataset`` and loaded with :func:`load_samples`; binary tasks with
``@dataset`` and :func:`load_dataset`.
"""

from overseer.data._checks import check_dataset, check_exists
from overseer.data._files import get_text, json_lines, read_records, shared_data_dir
from overseer.data._registry import (
    DatasetInfo,
    SampleDatasetInfo,
    dataset,
    dataset_info,
    list_datasets,
    list_sample_datasets,
    load_dataset,
    load_samples,
    sample_dataset,
    sample_dataset_info,
)
from overseer.data._sample import ROLES, ChatMessage, FieldSpec, Sample, SampleDataset
from overseer.data._schema import PAIRINGS, BinaryDataset, Example, Pairing, make_dataset
from overseer.data._sources import RecordToSample, hub_samples, local_samples

__all__ = [
    "PAIRINGS",
    "ROLES",
    "BinaryDataset",
    "ChatMessage",
    "DatasetInfo",
    "Example",
    "FieldSpec",
    "Pairing",
    "RecordToSample",
    "Sample",
    "SampleDataset",
    "SampleDatasetInfo",
    "check_dataset",
    "check_exists",
    "dataset",
    "dataset_info",
    "get_text",
    "hub_samples",
    "json_lines",
    "list_datasets",
    "list_sample_datasets",
    "load_dataset",
    "load_samples",
    "local_samples",
    "make_dataset",
    "read_records",
    "sample_dataset",
    "sample_dataset_info",
    "shared_data_dir",
]
