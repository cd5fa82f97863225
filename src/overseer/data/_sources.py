"""Samples from a local data file (or a folder of split files) or from the Hugging Face hub.

Both loaders map records onto :class:`Sample` with a :class:`FieldSpec` or a record-to-sample
function, and pick records the same way: ``shuffle`` permutes the record indices with
``random.Random(seed)``, then ``limit`` keeps the first ones. A record keeps the id of its position
in the source (``<file stem>-<index>`` or ``<split>-<index>``) whether or not it was shuffled, so the
same hub split and a local copy of it give the same samples.
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from overseer.data._files import (
    check_limit,
    get_field,
    get_text,
    is_empty_text,
    one_line,
    read_split,
    skip_empty,
    strip_format,
)
from overseer.data._sample import FieldSpec, Sample, SampleDataset
from overseer.errors import OverseerError

if TYPE_CHECKING:
    import datasets

RecordToSample = Callable[[dict[str, Any]], Sample]
"""A function from one raw record (a dict) to a :class:`Sample`; an empty ``id`` is filled in."""


def pick_indices(n: int, limit: int | None, shuffle: bool, seed: int) -> list[int]:
    """Which of ``n`` records to keep, in order: all, or a seeded permutation, cut to ``limit``.

    >>> pick_indices(5, 3, shuffle=False, seed=0)
    [0, 1, 2]
    >>> sorted(pick_indices(5, None, shuffle=True, seed=0))
    [0, 1, 2, 3, 4]
    """
    check_limit(limit)
    order = list(range(n))
    if shuffle:
        random.Random(seed).shuffle(order)
    return order[:limit]


def record_to_sample(
    record: Mapping[str, Any], fields: FieldSpec | RecordToSample, default_id: str, where: str
) -> Sample:
    """Map one record onto a sample with ``fields``; ``where`` names the record in errors."""
    if not isinstance(fields, FieldSpec):
        if not callable(fields):
            raise OverseerError(f"fields must be a FieldSpec or a function from a record to a Sample, not {fields!r}")
        try:
            sample = fields(dict(record))
        except KeyError as exc:
            present = ", ".join(repr(k) for k in record) or "(none)"
            raise OverseerError(f"{where}: record_to_sample found no field {exc}; fields present: {present}") from exc
        if not isinstance(sample, Sample):
            raise OverseerError(f"{where}: record_to_sample returned a {type(sample).__name__}, not a Sample")
        if not sample.id:
            sample = dataclasses.replace(sample, id=default_id)
        return sample
    spec = fields
    raw_input = get_field(record, spec.input, where, "input field")
    if isinstance(raw_input, list | tuple):
        value: str | tuple[Any, ...] = tuple(raw_input)
    else:
        value = raw_input if isinstance(raw_input, str) else str(raw_input)
    target: str | tuple[str, ...] = ""
    if spec.target is not None:
        raw_target = get_field(record, spec.target, where, "target field")
        target = tuple(str(t) for t in raw_target) if isinstance(raw_target, list | tuple) else str(raw_target)
    choices: tuple[str, ...] | None = None
    if isinstance(spec.choices, str):
        options = get_field(record, spec.choices, where, "choices field")
        if not isinstance(options, Sequence) or isinstance(options, str):
            raise OverseerError(f"{where}: field {spec.choices!r} (choices field) holds {options!r}, not a list")
        choices = tuple(str(o) for o in options)
    elif spec.choices is not None:
        choices = tuple(get_text(record, name, where, "choices field") for name in spec.choices)
    return Sample(
        input=value,  # type: ignore[arg-type]  # checked in Sample.__post_init__
        target=target,
        choices=choices,
        id=get_text(record, spec.id, where, "id field") if spec.id else default_id,
        metadata={name: get_field(record, name, where, "metadata field") for name in spec.metadata},
        group=get_text(record, spec.group, where, "group field") if spec.group else None,
    )


def _samples(
    name: str,
    records: Sequence[tuple[str, Mapping[str, Any]]],
    fields: FieldSpec | RecordToSample | None,
    source: str,
) -> SampleDataset:
    """Map the records onto samples, skipping (with one warning line, see :func:`skip_empty`) empty inputs."""
    spec = FieldSpec() if fields is None else fields
    samples = []
    for rec_id, rec in records:
        if isinstance(spec, FieldSpec) and spec.input in rec and is_empty_text(rec[spec.input]):
            continue
        sample = record_to_sample(rec, spec, rec_id, f"{source!r} record {rec_id!r}")
        if not _empty_input(sample):
            samples.append(sample)
    field = repr(spec.input) if isinstance(spec, FieldSpec) else "input"
    meta = skip_empty(len(records) - len(samples), len(records), source, field)
    return SampleDataset(name, tuple(samples), source, meta)


def _empty_input(sample: Sample) -> bool:
    """True when the sample's input has no text: blank, or a chat without a non-blank message."""
    if isinstance(sample.input, str):
        return is_empty_text(sample.input)
    return all(is_empty_text(m["content"]) for m in sample.input)


def local_samples(
    path: str | os.PathLike[str],
    fields: FieldSpec | RecordToSample | None = None,
    *,
    split: str | None = None,
    name: str | None = None,
    limit: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
) -> SampleDataset:
    """Samples from a jsonl / json / csv / tsv / parquet file (gzipped too), or a folder of split files.

    Args:
        path: a data file, or a folder (a clone of a hub repository or a source repository) in
            which the files of ``split`` are found by name (``test.jsonl``, ``data/test-0000.parquet``).
        fields: a :class:`FieldSpec` (default: fields ``input`` and ``target``) or a function
            from a record to a :class:`Sample`.
        split: which split to read from a folder; required for a folder, unused for a file.
        name: the dataset's name (default: the file stem, or the split).
        limit: keep at most this many records (after shuffling).
        shuffle: shuffle the records with ``seed`` before applying ``limit``.
        seed: seeds the shuffle.

    Example: a file with lines ``{"q": "2+2?", "a": 4}`` loads with
    ``local_samples("x.jsonl", FieldSpec(input="q", target="a"))`` into
    ``Sample(input="2+2?", target="4", id="x-0")``.
    """
    check_limit(limit)
    if Path(path).expanduser().is_dir() and split is None:
        raise OverseerError(f"{str(path)!r} is a folder: give split=... to say which files to read")
    records, source = read_split(path, split or "", what=f"samples from {str(path)!r}")
    picked = [records[i] for i in pick_indices(len(records), limit, shuffle, seed)]
    return _samples(name or split or Path(strip_format(path)).name, picked, fields, source)


def hub_split(
    repo: str,
    *,
    revision: str,
    split: str,
    config: str | None = None,
    data_dir: str | None = None,
    what: str = "",
    hint: str = "",
) -> datasets.Dataset:
    """One split of a hub dataset at ``revision``; a failed download is one :class:`OverseerError`.

    ``what`` starts the error message (e.g. ``"dataset 'sciq'"``, default the repository) and
    ``hint`` ends it (default: how to use a local copy instead).
    """
    try:
        import datasets
        from datasets.exceptions import DatasetsError
    except ImportError as exc:  # pragma: no cover - datasets is a dependency
        raise OverseerError("loading from the hub needs the 'datasets' package: pip install datasets") from exc
    what = what or f"hub dataset {repo!r}"
    hint = hint or f"pass path= to a local copy of {repo} (a data file or a clone)"
    try:
        return datasets.load_dataset(repo, config, revision=revision, split=split, data_dir=data_dir)
    except (OSError, DatasetsError) as exc:
        raise OverseerError(
            f"{what} could not be downloaded from the Hugging Face hub "
            f"({repo}@{revision[:8]}, split {split!r}): {one_line(exc)[:200]}; {hint}"
        ) from exc


def hub_source(repo: str, revision: str, split: str, config: str | None = None, data_dir: str | None = None) -> str:
    """The ``source`` string of a hub split: ``hf://datasets/<repo>@<revision>[/<config>][<split>]``."""
    where = f"hf://datasets/{repo}@{revision}"
    for part in (config, data_dir):
        if part:
            where += f"/{part}"
    return f"{where}[{split}]"


def hub_samples(
    repo: str,
    fields: FieldSpec | RecordToSample | None = None,
    *,
    revision: str,
    split: str,
    config: str | None = None,
    data_dir: str | None = None,
    name: str | None = None,
    limit: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
) -> SampleDataset:
    """Samples from one split of a Hugging Face hub dataset, read at a pinned revision.

    Args:
        repo: the dataset repository, e.g. ``"openai/gsm8k"``.
        fields: a :class:`FieldSpec` (default: fields ``input`` and ``target``) or a function
            from a record to a :class:`Sample`.
        revision: the commit sha to read (a branch name such as ``"main"`` works but the data may
            then change under you); required, so that every run says which data it saw.
        split: the split, e.g. ``"test"``.
        config: the dataset's configuration (``datasets.load_dataset``'s ``name``), e.g. ``"main"``.
        data_dir: a folder of the repository to read instead of the default files.
        name: the dataset's name (default: ``repo``).
        limit: keep at most this many records (after shuffling); only those are converted.
        shuffle: shuffle the records with ``seed`` before applying ``limit`` (the same
            permutation :func:`local_samples` uses, so a local copy gives the same samples).
        seed: seeds the shuffle.

    Records get the ids ``<split>-<index in the split>``. No network, a wrong name or a missing
    revision is one :class:`OverseerError` with a hint to use :func:`local_samples` instead.
    """
    check_limit(limit)
    if not isinstance(revision, str) or not revision:
        raise OverseerError(f"hub_samples({repo!r}): revision must be a commit sha (or branch name), not {revision!r}")
    table = hub_split(repo, revision=revision, split=split, config=config, data_dir=data_dir)
    picked = pick_indices(len(table), limit, shuffle, seed)
    rows = table.select(picked).to_list() if picked else []
    records = [(f"{split}-{i}", row) for i, row in zip(picked, rows, strict=True)]
    return _samples(name or repo, records, fields, hub_source(repo, revision, split, config, data_dir))
