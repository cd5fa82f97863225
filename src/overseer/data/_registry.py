"""Dataset registries: ``@dataset(name, ...)`` and ``@sample_dataset(name, ...)`` register loaders.

``load_dataset(name)`` calls a binary-task loader; ``load_samples(name)`` a sample-dataset loader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from overseer._registry import lookup, names, register
from overseer.data._sample import SampleDataset
from overseer.data._schema import BinaryDataset
from overseer.errors import OverseerError


@dataclass(frozen=True)
class DatasetInfo:
    """What ``overseer datasets`` shows about a registered dataset."""

    name: str
    loader: Callable[..., BinaryDataset]
    offline: bool
    description: str
    source: str


def dataset(
    name: str, *, offline: bool, description: str, source: str
) -> Callable[[Callable[..., BinaryDataset]], Callable[..., BinaryDataset]]:
    """Register a dataset loader under ``name``.

    The loader takes keyword arguments (``path``, ``limit``, ``seed``, ...) and returns a
    :class:`BinaryDataset`. ``offline`` says whether it works without a download.
    """

    def decorate(fn: Callable[..., BinaryDataset]) -> Callable[..., BinaryDataset]:
        register("dataset", name)(DatasetInfo(name, fn, offline, description, source))
        return fn

    return decorate


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry for ``name``, or a one-line error listing the known datasets."""
    _import_loaders()
    return lookup("dataset", name)


def list_datasets() -> list[DatasetInfo]:
    """Every registered dataset, sorted by name."""
    _import_loaders()
    return [lookup("dataset", n) for n in names("dataset")]


def load_dataset(name: str, **kwargs: Any) -> BinaryDataset:
    """Load a registered dataset by name; keyword arguments go to its loader."""
    info = dataset_info(name)
    try:
        return info.loader(**kwargs)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise OverseerError(f"dataset {name!r}: {exc}") from exc
        raise


@dataclass(frozen=True)
class SampleDatasetInfo:
    """A registered sample dataset: its loader and what a listing shows about it."""

    name: str
    loader: Callable[..., SampleDataset]
    offline: bool
    description: str
    source: str


def sample_dataset(
    name: str, *, offline: bool, description: str, source: str
) -> Callable[[Callable[..., SampleDataset]], Callable[..., SampleDataset]]:
    """Register a loader of a :class:`SampleDataset` under ``name``.

    The loader takes keyword arguments (``path``, ``split``, ``limit``, ``shuffle``, ``seed``, ...)
    and returns a :class:`SampleDataset`. ``offline`` says whether it works without a download
    (a loader that reads the hub unless given ``path=`` is not offline).
    """

    def decorate(fn: Callable[..., SampleDataset]) -> Callable[..., SampleDataset]:
        register("sample_dataset", name)(SampleDatasetInfo(name, fn, offline, description, source))
        return fn

    return decorate


def sample_dataset_info(name: str) -> SampleDatasetInfo:
    """The registry entry for ``name``, or a one-line error listing the known sample datasets."""
    _import_sample_loaders()
    return lookup("sample_dataset", name)


def list_sample_datasets() -> list[SampleDatasetInfo]:
    """Every registered sample dataset, sorted by name."""
    _import_sample_loaders()
    return [lookup("sample_dataset", n) for n in names("sample_dataset")]


def load_samples(name: str, **kwargs: Any) -> SampleDataset:
    """Load a registered sample dataset by name; keyword arguments go to its loader."""
    info = sample_dataset_info(name)
    try:
        return info.loader(**kwargs)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise OverseerError(f"sample dataset {name!r}: {exc}") from exc
        raise


def _import_sample_loaders() -> None:
    """Import the modules whose decorators register the built-in sample datasets."""
    from overseer.data import bbq, gsm8k  # noqa: F401


def _import_loaders() -> None:
    """Import the modules whose decorators register the built-in loaders."""
    from overseer.data import builtin, hub, local  # noqa: F401
