"""A user's own data file as a binary task: jsonl / json / csv / tsv / parquet, mapped field by field.

Reading files (every format quirk: gzip, a ``.json`` file that is really JSON lines, csv cells that
are always strings) and their fields lives in :mod:`overseer.data._files`, shared with the hub
loaders and the sample loaders; ``read_records``, ``get_field`` and ``parse_label`` are re-exported
here. The helpers ``balanced_flags`` and ``pairwise_examples`` are shared with
:mod:`overseer.data.hub`.
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from overseer.data._files import (
    FORMATS,
    check_limit,
    get_field,
    get_text,
    get_text_or_empty,
    parse_label,
    read_records,
    skip_empty,
    strip_format,
)
from overseer.data._registry import dataset
from overseer.data._schema import BinaryDataset, Example, make_dataset
from overseer.errors import OverseerError

__all__ = [
    "FORMATS",
    "balanced_flags",
    "check_limit",
    "get_field",
    "get_text",
    "local",
    "pairwise_examples",
    "parse_label",
    "read_records",
]

# --- balancing and pairs ---------------------------------------------------------------------


def balanced_flags(n: int, rng: random.Random) -> list[bool]:
    """``n`` booleans, half of them True (the odd one out by coin flip), in random order.

    Used wherever a loader picks which of two variants an example shows (correct vs wrong answer,
    chosen-first vs rejected-first): exact balance, and the variant carries no positional signal.
    """
    k = n // 2 + (n % 2 == 1 and rng.random() < 0.5)
    flags = [True] * k + [False] * (n - k)
    rng.shuffle(flags)
    return flags


def pairwise_examples(pairs: Sequence[tuple[str, str, str, str | None]], seed: int) -> list[Example]:
    """Compare-pairing examples from ``(id, chosen, rejected, group)`` tuples.

    A seeded, balanced half shows the chosen text first (label 1), the rest the rejected text first
    (label 0), so position carries no signal and the classes are balanced.
    """
    flags = balanced_flags(len(pairs), random.Random(seed))
    return [
        Example(id=ex_id, text=chosen, text_pair=rejected, label=1, group=group)
        if first
        else Example(id=ex_id, text=rejected, text_pair=chosen, label=0, group=group)
        for (ex_id, chosen, rejected, group), first in zip(pairs, flags, strict=True)
    ]


# --- the registered loader -------------------------------------------------------------------


@dataset(
    "local",
    offline=True,
    description="your own jsonl/json/csv/tsv/parquet file (gzipped too), fields mapped by name",
    source="a local file (path=... / --data-path)",
)
def local(
    path: str | os.PathLike[str] | None = None,
    text_field: str = "text",
    label_field: str = "label",
    pair_field: str | None = None,
    id_field: str | None = None,
    group_field: str | None = None,
    chosen_field: str | None = None,
    rejected_field: str | None = None,
    prompt_field: str | None = None,
    label_map: Mapping[Any, Any] | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> BinaryDataset:
    r"""Load a binary task from a data file whose fields are named by the caller.

    Two shapes:

    - labelled texts: ``text_field`` and ``label_field`` (plus ``pair_field`` for a second text
      encoded with the first, e.g. question + answer, which makes the pairing "concat"). Labels
      may be bool, 0/1, "true"/"false", or anything mapped through ``label_map``.
    - preferences: ``chosen_field`` and ``rejected_field`` (plus ``prompt_field``, prepended to
      both, for files that store the prompt apart). Each record becomes one "compare" example;
      a seeded, balanced half puts the chosen text first (label 1), the rest the rejected one.

    A record looks like ``{"text": "The film was a delight.", "label": 1}`` or
    ``{"chosen": "\n\nHuman: hi\n\nAssistant: Hello!", "rejected": "...: Go away."}``.
    ``id_field`` gives stable ids (default: file stem and record index); ``group_field`` ties
    records that must share a split. ``limit`` keeps the first records of the file.

    A record whose text (``text_field`` / ``pair_field``, or ``chosen_field`` / ``rejected_field``)
    is empty (null, ``""`` or whitespace only) is skipped, with one warning line on stderr and the
    note ``meta["skipped"]`` (e.g. ``"3 of 120 records with an empty text field ('text')"``); a
    file whose texts are all empty is an error.
    """
    if path is None:
        raise OverseerError("dataset 'local' needs a data file: path=... (CLI: --data-path FILE)")
    check_limit(limit)
    if (chosen_field is None) != (rejected_field is None):
        raise OverseerError("dataset 'local': give both chosen_field and rejected_field, or neither")
    records = read_records(path)[:limit]
    name = str(path)
    stem = Path(strip_format(path)).name

    def where(i: int) -> str:
        return f"{name!r} record {i}"

    def ident(i: int, record: Mapping[str, Any]) -> str:
        return get_text(record, id_field, where(i), "id_field") if id_field else f"{stem}-{i}"

    def group(i: int, record: Mapping[str, Any]) -> str | None:
        return get_text(record, group_field, where(i), "group_field") if group_field else None

    def texts(i: int, record: Mapping[str, Any], *fields: tuple[str, str]) -> list[str] | None:
        """The record's texts in ``(field, role)`` order, or None when one of them is empty."""
        values = [get_text_or_empty(record, field, where(i), role) for field, role in fields]
        found = [v for v in values if v is not None]
        return found if len(found) == len(values) else None

    empty = 0
    if chosen_field is not None and rejected_field is not None:
        pairs = []
        for i, rec in enumerate(records):
            both = texts(i, rec, (chosen_field, "chosen_field"), (rejected_field, "rejected_field"))
            if both is None:
                empty += 1
                continue
            chosen, rejected = both
            grp = group(i, rec)
            if prompt_field is not None:
                prompt = get_text(rec, prompt_field, where(i), "prompt_field")
                chosen, rejected = f"{prompt}\n{chosen}", f"{prompt}\n{rejected}"
            pairs.append((ident(i, rec), chosen, rejected, grp))
        ds = make_dataset("local", pairwise_examples(pairs, seed), pairing="compare", source=name)
        meta = skip_empty(empty, len(records), name, f"{chosen_field!r} or {rejected_field!r}")
        return dataclasses.replace(ds, meta=meta)

    fields = [(text_field, "text_field")] + ([(pair_field, "pair_field")] if pair_field else [])
    examples = []
    for i, rec in enumerate(records):
        found = texts(i, rec, *fields)
        if found is None:
            empty += 1
            continue
        examples.append(
            Example(
                id=ident(i, rec),
                text=found[0],
                text_pair=found[1] if pair_field else None,
                label=parse_label(get_field(rec, label_field, where(i), "label_field"), where(i), label_map),
                group=group(i, rec),
            )
        )
    ds = make_dataset("local", examples, pairing="concat" if pair_field else "single", source=name)
    return dataclasses.replace(ds, meta=skip_empty(empty, len(records), name, " or ".join(repr(f) for f, _ in fields)))
