"""A user's own data file as a binary task: jsonl / json / csv / tsv / parquet, mapped field by field.

``read_records`` turns any supported file into a list of dicts; the hub loaders read local clones
through it too, so every format quirk (gzip, a ``.json`` file that is really JSON lines, csv cells
that are always strings) is handled in one place. The helpers ``parse_label``, ``balanced_flags``
and ``pairwise_examples`` are shared with :mod:`overseer.data.hub` for the same reason.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import random
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from overseer.data._registry import dataset
from overseer.data._schema import BinaryDataset, Example, make_dataset
from overseer.errors import OverseerError

__all__ = [
    "FORMATS",
    "balanced_flags",
    "get_field",
    "local",
    "pairwise_examples",
    "parse_label",
    "read_records",
]

FORMATS: tuple[str, ...] = (
    ".jsonl", ".jsonl.gz", ".ndjson", ".json", ".json.gz", ".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet"
)  # fmt: skip
_TRUE = {"1", "true"}
_FALSE = {"0", "false"}


def one_line(exc: BaseException) -> str:
    """An exception's message squeezed onto one line, for OverseerError."""
    return " ".join(str(exc).split()) or type(exc).__name__


def file_format(path: str | os.PathLike[str]) -> str | None:
    """The entry of :data:`FORMATS` that ``path``'s name ends with, or None."""
    name = Path(path).name.lower()
    return next((fmt for fmt in sorted(FORMATS, key=len, reverse=True) if name.endswith(fmt)), None)


def strip_format(path: str | os.PathLike[str]) -> str:
    """``path`` as a string without its data-format suffix (``a/test.jsonl.gz`` -> ``a/test``)."""
    fmt = file_format(path)
    text = Path(path).as_posix()
    return text[: -len(fmt)] if fmt else text


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of a jsonl / json / csv / tsv / parquet file (optionally gzipped) as a dict.

    csv and tsv cells stay strings (no type guessing, so ids like ``007`` survive); a ``.json``
    file may hold a list of objects or, as ``datasets``' ``to_json`` writes them, JSON lines.
    Any problem (missing file, unknown format, bad JSON, empty file) is one :class:`OverseerError`.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise OverseerError(f"data file not found: {str(path)!r}")
    if p.is_dir():
        raise OverseerError(f"{str(path)!r} is a directory; give a data file ({', '.join(FORMATS)})")
    fmt = file_format(p)
    if fmt is None:
        raise OverseerError(f"cannot read {str(path)!r}: unsupported format; supported: {', '.join(FORMATS)}")
    try:
        if fmt == ".parquet":
            records = _read_parquet(p)
        else:
            with _open_text(p) as stream:
                if fmt in (".jsonl", ".jsonl.gz", ".ndjson"):
                    records = list(_jsonl(stream, path))
                elif fmt in (".json", ".json.gz"):
                    records = _json(stream.read(), path)
                else:
                    records = _delimited(stream, "\t" if fmt.startswith(".tsv") else ",", path)
    except OverseerError:
        raise
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as exc:  # bad gzip, bad encoding, bad parquet
        raise OverseerError(f"cannot read {str(path)!r} as {fmt}: {one_line(exc)}") from exc
    if not records:
        raise OverseerError(f"{str(path)!r} holds no records")
    return records


def _open_text(p: Path) -> IO[str]:
    """Open ``p`` for reading text, through gzip when its name ends in ``.gz``."""
    if p.name.lower().endswith(".gz"):
        return gzip.open(p, "rt", encoding="utf-8", newline="")
    return p.open(encoding="utf-8", newline="")


def _jsonl(lines: Iterator[str] | IO[str], path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Parse JSON lines, naming the line number of the first bad one."""
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise OverseerError(f"{str(path)!r} line {lineno} is not valid JSON: {exc.msg}") from exc
        if not isinstance(obj, dict):
            raise OverseerError(f"{str(path)!r} line {lineno} is a JSON {type(obj).__name__}, not an object")
        yield obj


def _json(text: str, path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Parse a JSON document holding a list of objects, or fall back to JSON lines."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # several top-level values: it is JSON lines under a .json name
            return list(_jsonl(iter(text.splitlines()), path))
        raise OverseerError(f"{str(path)!r} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    if isinstance(obj, dict):  # a single object is one record
        obj = [obj]
    if not isinstance(obj, list) or not all(isinstance(r, dict) for r in obj):
        raise OverseerError(f"{str(path)!r} must hold a JSON list of objects (one per record)")
    return obj


def _delimited(stream: IO[str], delimiter: str, path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Parse csv/tsv with a header row; a row with more cells than the header is an error."""
    csv.field_size_limit(2**31 - 1)  # long passages and dialogues exceed the 128 KiB default
    records = []
    for row in csv.DictReader(stream, delimiter=delimiter):
        if None in row:
            raise OverseerError(
                f"{str(path)!r} record {len(records)} has more cells than the header has columns"
            )
        records.append(row)
    return records


def _read_parquet(p: Path) -> list[dict[str, Any]]:
    """Read a parquet file (what a clone of a Hugging Face dataset repository holds)."""
    import pyarrow.parquet as pq

    return pq.read_table(p).to_pylist()


# --- fields and labels -----------------------------------------------------------------------


def get_field(record: Mapping[str, Any], name: str, where: str, role: str = "") -> Any:
    """``record[name]``, or a one-line error naming the field, the file and the fields present."""
    if name not in record:
        present = ", ".join(repr(k) for k in record) or "(none)"
        hint = f" ({role})" if role else ""
        raise OverseerError(f"{where} has no field {name!r}{hint}; fields present: {present}")
    value = record[name]
    if value is None:
        raise OverseerError(f"{where}: field {name!r} is empty")
    return value


def get_text(record: Mapping[str, Any], name: str, where: str, role: str = "") -> str:
    """A field's value as text (numbers and other scalars are written out with ``str``)."""
    value = get_field(record, name, where, role)
    return value if isinstance(value, str) else str(value)


def parse_label(value: Any, where: str, label_map: Mapping[Any, Any] | None = None) -> int:
    """Turn a raw label into 0 or 1, mapping it through ``label_map`` first when one is given.

    Accepted without a map: bool, the numbers 0 and 1, and the strings "true", "false" (any case)
    and "0", "1" (also "0.0", "1.0"), so a file reads the same as json (typed) or csv (strings).
    """
    if label_map is not None:
        if value in label_map:
            value = label_map[value]
        elif str(value) in label_map:  # csv cells are strings, CLI maps have string keys
            value = label_map[str(value)]
        else:
            keys = ", ".join(repr(k) for k in label_map)
            raise OverseerError(f"{where}: label {value!r} is not in label_map; label_map keys: {keys}")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float) and value in (0, 1):
        return int(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return 1
        if text in _FALSE:
            return 0
        try:
            number = float(text)  # "1.0" is what pandas writes for float labels
        except ValueError:
            number = None
        if number in (0.0, 1.0):
            return int(number)
    raise OverseerError(
        f"{where}: label {value!r} is not binary; allowed: 0, 1, true, false (or give label_map=...)"
    )


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


def check_limit(limit: int | None) -> None:
    """Refuse a limit that is not a positive whole number."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise OverseerError(f"limit must be a positive integer or None, not {limit!r}")


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

    if chosen_field is not None and rejected_field is not None:
        pairs = []
        for i, rec in enumerate(records):
            chosen = get_text(rec, chosen_field, where(i), "chosen_field")
            rejected = get_text(rec, rejected_field, where(i), "rejected_field")
            grp = group(i, rec)
            if prompt_field is not None:
                prompt = get_text(rec, prompt_field, where(i), "prompt_field")
                chosen, rejected = f"{prompt}\n{chosen}", f"{prompt}\n{rejected}"
            pairs.append((ident(i, rec), chosen, rejected, grp))
        return make_dataset("local", pairwise_examples(pairs, seed), pairing="compare", source=name)

    examples = [
        Example(
            id=ident(i, rec),
            text=get_text(rec, text_field, where(i), "text_field"),
            text_pair=get_text(rec, pair_field, where(i), "pair_field") if pair_field else None,
            label=parse_label(get_field(rec, label_field, where(i), "label_field"), where(i), label_map),
            group=group(i, rec),
        )
        for i, rec in enumerate(records)
    ]
    return make_dataset("local", examples, pairing="concat" if pair_field else "single", source=name)
