"""Dataset registries: ``@dataset(name, ...)`` and ``@sample_dataset(name, ...)`` register loaders.

``load_dataset(name)`` calls a binary-task loader; ``load_samples(name)`` a sample-dataset loader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from overseer._registry import RegistryKind, lookup, names, register
from overseer.data._sample import SampleDataset
from overseer.data._schema import BinaryDataset
from overseer.errors import OverseerError

_Loaded = TypeVar("_Loaded", BinaryDataset, SampleDataset)  # what a loader returns


@dataclass(frozen=True)
class _LoaderInfo(Generic[_Loaded]):
    """A registered loader and what a listing shows about it (one shape for both kinds of dataset)."""

    name: str
    loader: Callable[..., _Loaded]
    offline: bool
    description: str
    source: str


class DatasetInfo(_LoaderInfo[BinaryDataset]):
    """What ``overseer datasets`` shows about a registered dataset."""


class SampleDatasetInfo(_LoaderInfo[SampleDataset]):
    """A registered sample dataset: its loader and what a listing shows about it."""


def _registrar(
    kind: RegistryKind, info: type[_LoaderInfo[_Loaded]], name: str, offline: bool, description: str, source: str
) -> Callable[[Callable[..., _Loaded]], Callable[..., _Loaded]]:
    """The decorator that registers a loader as ``kind``/``name`` and returns it unchanged."""

    def decorate(fn: Callable[..., _Loaded]) -> Callable[..., _Loaded]:
        register(kind, name)(info(name, fn, offline, description, source))
        return fn

    return decorate


def _call(info: _LoaderInfo[_Loaded], what: str, kwargs: dict[str, Any]) -> _Loaded:
    """Run ``info``'s loader; a keyword it does not take is one line that names the dataset (``what``)."""
    try:
        return info.loader(**kwargs)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise OverseerError(f"{what} {info.name!r}: {exc}") from exc
        raise


def dataset(
    name: str, *, offline: bool, description: str, source: str
) -> Callable[[Callable[..., BinaryDataset]], Callable[..., BinaryDataset]]:
    """Register a dataset loader under ``name``.

    The loader takes keyword arguments (``path``, ``limit``, ``seed``, ...) and returns a
    :class:`BinaryDataset`. ``offline`` says whether it works without a download.
    """
    return _registrar("dataset", DatasetInfo, name, offline, description, source)


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
    return _call(dataset_info(name), "dataset", kwargs)


def sample_dataset(
    name: str, *, offline: bool, description: str, source: str
) -> Callable[[Callable[..., SampleDataset]], Callable[..., SampleDataset]]:
    """Register a loader of a :class:`SampleDataset` under ``name``.

    The loader takes keyword arguments (``path``, ``split``, ``limit``, ``shuffle``, ``seed``, ...)
    and returns a :class:`SampleDataset`. ``offline`` says whether it works without a download
    (a loader that reads the hub unless given ``path=`` is not offline).
    """
    return _registrar("sample_dataset", SampleDatasetInfo, name, offline, description, source)


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
    return _call(sample_dataset_info(name), "sample dataset", kwargs)


def _import_sample_loaders() -> None:
    """Import the modules whose decorators register the built-in sample datasets."""
    from overseer.data import bbq, gsm8k  # noqa: F401


def _import_loaders() -> None:
    """Import the modules whose decorators register the built-in loaders."""
    from overseer.data import builtin, hub, local  # noqa: F401
