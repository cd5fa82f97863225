"""Reading data files and their fields: one place for every format quirk, shared by all loaders.

``read_records`` turns a jsonl / json / csv / tsv / parquet file (gzipped too) into a list of dicts;
``read_split`` finds the files of one split in a folder (a clone of a hub repository or of a
dataset's source repository) and reads them with stable record ids. ``get_field`` / ``get_text``
give one-line errors that name the file, the record and the fields present; ``parse_label`` reads
a binary label the same way from typed JSON and from csv strings.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from overseer.errors import OverseerError

FORMATS: tuple[str, ...] = (
    ".jsonl", ".jsonl.gz", ".ndjson", ".json", ".json.gz", ".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet"
)  # fmt: skip
_TRUE = {"1", "true"}
_FALSE = {"0", "false"}


def shared_data_dir() -> Path:
    """Where local copies of the public datasets live: ``$OVERSEER_DATA_DIR``, else ``../shared/data``.

    ``../shared/data`` is looked for beside the working folder first, then beside the checkout, so a
    run from the clone's root and an installed package used from elsewhere find the same folder. The
    folder need not exist: callers check the file they need and fall back (e.g. to the hub) or fail.
    """
    env = os.environ.get("OVERSEER_DATA_DIR")
    if env:
        return Path(env).expanduser()
    here = Path.cwd() / ".." / "shared" / "data"
    if here.is_dir():
        return here.resolve()
    repo = Path(__file__).resolve().parents[3]  # src/overseer/data/_files.py -> checkout root
    return (repo / ".." / "shared" / "data").resolve()


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


def json_lines(
    lines: Iterable[str], where: str, not_json: str = "{where}:{line}: not JSON ({reason})"
) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` of each non-blank line of JSON lines, in order.

    A line that is not JSON stops the reading with one :class:`OverseerError`, worded by ``not_json``
    from ``where`` (the file), ``line`` (its number, from 1) and ``reason`` (the parser's message).
    Data files and the audit's label files are parsed here, each with its own wording of the error.
    """
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise OverseerError(not_json.format(where=where, line=lineno, reason=exc.msg)) from exc
        yield lineno, value


def _jsonl(lines: Iterator[str] | IO[str], path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Parse JSON lines, naming the line number of the first bad one."""
    for lineno, obj in json_lines(lines, str(path), "{where!r} line {line} is not valid JSON: {reason}"):
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


def is_empty_text(value: Any) -> bool:
    """True for a text field with nothing in it: null, ``""`` or whitespace only."""
    return value is None or (isinstance(value, str) and not value.strip())


def get_text_or_empty(record: Mapping[str, Any], name: str, where: str, role: str = "") -> str | None:
    """Like :func:`get_text`, but an empty text (see :func:`is_empty_text`) is None, not an error.

    A field that is missing altogether is still an error: that is a wrong field name, not an empty text.
    """
    if name in record and is_empty_text(record[name]):
        return None
    return get_text(record, name, where, role)


def skip_empty(empty: int, total: int, source: str, fields: str) -> dict[str, str]:
    """Report records skipped for an empty text: one warning line on stderr, and a note for ``meta``.

    ``empty`` of ``total`` records read from ``source`` had an empty text in ``fields`` (e.g.
    ``"'text'"``). None skipped gives no note; all of them skipped is an :class:`OverseerError`,
    since there is nothing left to train or score on. The note is ``{"skipped": "3 of 120
    records with an empty text field"}``, the key loaders use for every record they skip.
    """
    if empty == 0:
        return {}
    if empty == total:
        raise OverseerError(
            f"every one of the {total} records in {source} has an empty text field ({fields}); "
            "check the field names and the file"
        )
    print(f"warning: {empty} of {total} records in {source} have an empty text field; skipped", file=sys.stderr)
    return {"skipped": f"{empty} of {total} records with an empty text field ({fields})"}


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


def check_limit(limit: int | None) -> None:
    """Refuse a limit that is not a positive whole number."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise OverseerError(f"limit must be a positive integer or None, not {limit!r}")


# --- splits in a folder ----------------------------------------------------------------------

# File and folder names that source repositories use for each split.
SPLIT_NAMES: dict[str, tuple[str, ...]] = {"validation": ("validation", "valid", "dev", "val")}


def split_files(root: Path, split: str) -> list[Path]:
    """Data files for ``split`` under a cloned repository, matched by file or folder name.

    Matches ``test.jsonl.gz``, ``harmless-base/test.jsonl.gz`` (several subsets are read in
    order), ``data/train-00000-of-00001.parquet`` (hub shards) and ``default/train/0000.parquet``.
    """
    names = SPLIT_NAMES.get(split, (split,))
    found = []
    for file in sorted(root.rglob("*")):
        rel = file.relative_to(root)
        if not file.is_file() or file_format(file) is None or any(p.startswith(".") for p in rel.parts):
            continue
        stem = Path(strip_format(file)).name
        if stem in names or file.parent.name in names or any(stem.startswith(f"{n}-") for n in names):
            found.append(file)
    return found


def read_split(
    path: str | os.PathLike[str], split: str, subset: str | None = None, what: str = "dataset"
) -> tuple[list[tuple[str, dict[str, Any]]], str]:
    """``(id, record)`` pairs in file order, and where they came from, for a file or a folder.

    A data file is read whole (``split`` only names what it holds) and its records get the ids
    ``<file stem>-<index>``. A folder is searched for the files of ``split`` (see
    :func:`split_files`), inside its ``subset`` folder when one is given, and the records get the
    ids ``<relative path without format>-<index>``. ``what`` starts the error messages
    (e.g. ``"dataset 'sciq'"``).
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        stem = Path(strip_format(root)).name
        return [(f"{stem}-{i}", r) for i, r in enumerate(read_records(root))], str(path)
    if subset is not None:
        if not (root / subset).is_dir():
            subsets = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
            found = ", ".join(subsets) or "(none)"
            raise OverseerError(f"{what}: no subset {subset!r} in {str(path)!r}; found: {found}")
        root = root / subset
    files = split_files(root, split)
    if not files:
        raise OverseerError(
            f"{what}: no {split!r} data file under {str(root)!r} "
            f"(looked for {'/'.join(SPLIT_NAMES.get(split, (split,)))} with {', '.join(FORMATS)})"
        )
    records = []
    for file in files:
        prefix = strip_format(file.relative_to(root))
        records += [(f"{prefix}-{i}", r) for i, r in enumerate(read_records(file))]
    return records, str(root)
