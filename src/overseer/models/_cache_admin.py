"""List, check and clear Overseer's on-disk caches: activations, endpoint responses, converted models.

Every environment variable the caches read:

- ``OVERSEER_CACHE_DIR``: the root of every cache (default ``$XDG_CACHE_HOME/overseer``, and
  ``~/.cache/overseer`` when ``XDG_CACHE_HOME`` is unset);
- ``OVERSEER_ACTIVATION_CACHE_DIR``: the activation cache alone (default ``<root>/activations``).

The endpoint response cache is ``<root>/endpoint/responses.sqlite`` and GGUF models converted to
safetensors live in ``<root>/models``. Each cache only saves time: anything removed here is
computed, requested or converted again when next needed.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import struct
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from overseer._storage import cause
from overseer.errors import OverseerError, unknown
from overseer.models._cache import ACTIVATION_CACHE_ENV, activation_cache_dir, read_entry
from overseer.models._catalog import cache_root

CACHE_NAMES = ("activations", "endpoint", "models")
CACHE_ENVIRONMENT = {
    "OVERSEER_CACHE_DIR": "root of every cache (default: $XDG_CACHE_HOME/overseer, else ~/.cache/overseer)",
    ACTIVATION_CACHE_ENV: "activation cache alone (default: <root>/activations)",
    "XDG_CACHE_HOME": "read only for the default root when OVERSEER_CACHE_DIR is unset",
}
"""Every environment variable the caches read, with what it sets."""

STALE_TEMP_S = 3600
"""A temporary file or directory this much older than now was left by a process that died while writing."""

_UNITS = {"activations": "entr", "endpoint": "response", "models": "model"}
_SQLITE_SIDECARS = ("-journal", "-wal", "-shm")
_MODEL_TEMP = re.compile(r"\.tmp\d+$")


@dataclass(frozen=True)
class CacheInfo:
    """One cache: where it is, how many entries it holds and their size on disk."""

    name: str
    path: Path
    entries: int
    bytes: int
    note: str | None = None
    """Why the count may be incomplete (an endpoint cache that cannot be read), else None."""

    def describe(self) -> str:
        """``2 entries, 1.3 MiB`` (responses, models for the other caches)."""
        return f"{count_label(self.name, self.entries)}, {human_bytes(self.bytes)}"


@dataclass(frozen=True)
class BadEntry:
    """One damaged cache entry (a file, a model directory, or one endpoint response by ``key``)."""

    cache: str
    path: Path
    problem: str
    key: str | None = None

    def describe(self) -> str:
        """``activations /path/x.npy: problem`` on one line."""
        where = f"{self.path} (response {self.key})" if self.key is not None else str(self.path)
        return f"{self.cache} {where}: {self.problem}"


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify_caches` checked, what it found damaged and what it removed."""

    checked: dict[str, int]
    bad: list[BadEntry]
    removed: list[BadEntry] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing damaged is left in the caches."""
        return len(self.removed) == len(self.bad)


def human_bytes(n: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB``, ``1.1 GiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover


def count_label(name: str, n: int) -> str:
    """``1 entry``, ``3 responses``, ``2 models``: ``n`` entries of cache ``name``."""
    stem = _UNITS[name]
    if stem == "entr":
        return f"{n} {'entry' if n == 1 else 'entries'}"
    return f"{n} {stem}{'' if n == 1 else 's'}"


def cache_paths() -> dict[str, Path]:
    """Where each cache lives now, from the environment (nothing is created)."""
    root = cache_root()
    return {"activations": activation_cache_dir(), "endpoint": root / "endpoint" / "responses.sqlite",
            "models": root / "models"}


def _names(names: list[str] | tuple[str, ...] | None) -> list[str]:
    chosen = list(CACHE_NAMES) if names is None else list(names)
    for name in chosen:
        if name not in CACHE_NAMES:
            raise unknown("cache", name, CACHE_NAMES)
    return [n for n in CACHE_NAMES if n in chosen]


def _size(path: Path) -> int:
    try:
        if path.is_file():
            return path.stat().st_size
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    except OSError:
        return 0


def _is_stale(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime > STALE_TEMP_S
    except OSError:
        return False


# --- activations ---------------------------------------------------------------------------------
def _activation_files(root: Path) -> tuple[list[Path], list[Path]]:
    """(entries, temporary files) under the activation cache root."""
    if not root.is_dir():
        return [], []
    entries, temps = [], []
    for path in sorted(root.glob("*/*")):
        if not path.is_file():
            continue
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            temps.append(path)
        elif path.suffix == ".npy" and not path.name.startswith("."):
            entries.append(path)
    return entries, temps


# --- endpoint responses --------------------------------------------------------------------------
def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)


def _endpoint_bytes(path: Path) -> int:
    return sum(_size(Path(f"{path}{s}")) for s in ("", *_SQLITE_SIDECARS) if Path(f"{path}{s}").is_file())


def _endpoint_rows(path: Path) -> int:
    with closing(_read_only(path)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])


def _remove_endpoint(path: Path) -> None:
    for suffix in ("", *_SQLITE_SIDECARS):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _verify_endpoint(path: Path) -> tuple[int, list[BadEntry]]:
    if not path.is_file():
        return 0, []
    try:
        with closing(_read_only(path)) as conn:
            check = conn.execute("PRAGMA quick_check").fetchall()
            if check != [("ok",)]:
                return 0, [BadEntry("endpoint", path, f"the database is damaged: {check[0][0]}")]
            rows = conn.execute("SELECT key, body FROM responses").fetchall()
    except sqlite3.Error as exc:
        return 0, [BadEntry("endpoint", path, f"not a readable response cache: {exc}")]
    bad = []
    for key, body in rows:
        try:
            ok = isinstance(json.loads(body), dict)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            bad.append(BadEntry("endpoint", path, "the stored response is not a JSON object", key=key))
    return len(rows), bad


# --- converted models ----------------------------------------------------------------------------
def _model_dirs(root: Path) -> tuple[list[Path], list[Path]]:
    """(converted model directories, temporary directories) under the models cache."""
    if not root.is_dir():
        return [], []
    models, temps = [], []
    for path in sorted(root.iterdir()):
        if _MODEL_TEMP.search(path.name) or path.name.startswith("."):
            temps.append(path)
        elif path.is_dir():
            models.append(path)
    return models, temps


def _safetensors_problem(path: Path) -> str | None:
    """What is wrong with a safetensors file (its size must match what its header describes), else None."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                return f"{path.name} is cut short"
            (n,) = struct.unpack("<Q", raw)
            if n > size - 8:
                return f"{path.name} is cut short (its header says {n} bytes)"
            header = json.loads(fh.read(n))
    except OSError as exc:
        return f"cannot read {path.name}: {cause(exc)}"
    except ValueError:
        return f"{path.name} has a damaged header"
    ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)
            and "data_offsets" in v]
    expected = 8 + n + max(ends, default=0)
    if size != expected:
        return f"{path.name} has {size} bytes; its header describes {expected}"
    return None


def _model_problem(path: Path) -> str | None:
    try:
        json.loads((path / "config.json").read_text())
    except FileNotFoundError:
        return "config.json is missing"
    except (OSError, ValueError) as exc:
        return f"config.json cannot be read: {cause(exc) if isinstance(exc, OSError) else 'not JSON'}"
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        return "no .safetensors weights"
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return "model.safetensors.index.json cannot be read"
        missing = sorted(s for s in shards if not (path / s).is_file())
        if missing:
            return f"weight file {missing[0]} is missing"
    for file in weights:
        problem = _safetensors_problem(file)
        if problem is not None:
            return problem
    return None


# --- the library calls ---------------------------------------------------------------------------
def cache_info(names: list[str] | tuple[str, ...] | None = None) -> list[CacheInfo]:
    """Location, entry count and size of each cache (default: all of ``CACHE_NAMES``); creates nothing."""
    paths = cache_paths()
    infos = []
    for name in _names(names):
        path = paths[name]
        note = None
        if name == "activations":
            entries, temps = _activation_files(path)
            count, size = len(entries), sum(_size(p) for p in entries + temps)
        elif name == "endpoint":
            count, size = 0, _endpoint_bytes(path)
            if path.is_file():
                try:
                    count = _endpoint_rows(path)
                except sqlite3.Error as exc:
                    note = f"cannot be read: {exc}"
        else:
            models, temps = _model_dirs(path)
            count, size = len(models), sum(_size(p) for p in models + temps)
        infos.append(CacheInfo(name, path, count, size, note))
    return infos


def verify_caches(names: list[str] | tuple[str, ...] | None = None, fix: bool = False) -> VerifyReport:
    """Check every entry of the chosen caches (default: all); with ``fix``, remove the damaged ones.

    Activation entries must match the checksum in their name and load; endpoint responses must be
    a readable SQLite database of JSON objects; converted models need a readable ``config.json``
    and safetensors files of the size their headers describe. Temporary files older than an hour
    (left by a process that died while writing) count as damaged too.
    """
    paths = cache_paths()
    checked: dict[str, int] = {}
    bad: list[BadEntry] = []
    for name in _names(names):
        path = paths[name]
        if name == "activations":
            entries, temps = _activation_files(path)
            checked[name] = len(entries)
            for entry in entries:
                _, problem = read_entry(entry)
                if problem is not None:
                    bad.append(BadEntry(name, entry, problem))
        elif name == "endpoint":
            checked[name], found = _verify_endpoint(path)
            bad.extend(found)
            temps = []
        else:
            models, temps = _model_dirs(path)
            checked[name] = len(models)
            for model in models:
                problem = _model_problem(model)
                if problem is not None:
                    bad.append(BadEntry(name, model, problem))
        bad.extend(BadEntry(name, t, "temporary file left by a process that stopped while writing")
                   for t in temps if _is_stale(t))
    removed = [entry for entry in bad if _remove_bad(entry)] if fix else []
    return VerifyReport(checked, bad, removed)


def _remove_bad(entry: BadEntry) -> bool:
    """Remove one damaged entry; False when it could not be removed."""
    try:
        if entry.key is not None:
            with closing(sqlite3.connect(entry.path, timeout=30)) as conn, conn:
                conn.execute("DELETE FROM responses WHERE key = ?", (entry.key,))
        elif entry.cache == "endpoint":
            _remove_endpoint(entry.path)
        elif entry.path.is_dir():
            shutil.rmtree(entry.path)
        else:
            entry.path.unlink(missing_ok=True)
    except (OSError, sqlite3.Error):
        return False
    return True


def clear_caches(names: list[str] | tuple[str, ...]) -> list[CacheInfo]:
    """Remove every entry of the named caches; returns what was removed (count and size per cache).

    Only files the cache itself writes are removed from the activation directory (which
    ``$OVERSEER_ACTIVATION_CACHE_DIR`` may point anywhere); the endpoint database and the models
    directory's contents are removed whole.
    """
    if not names:
        raise OverseerError(f"name the caches to clear: {', '.join(CACHE_NAMES)}")
    removed = cache_info(names)
    for info in removed:
        try:
            if info.name == "activations":
                entries, temps = _activation_files(info.path)
                for file in entries + temps:
                    file.unlink(missing_ok=True)
                for sub in info.path.glob("*"):
                    if sub.is_dir() and len(sub.name) == 2 and not any(sub.iterdir()):
                        sub.rmdir()
            elif info.name == "endpoint":
                _remove_endpoint(info.path)
            elif info.path.is_dir():
                for child in info.path.iterdir():
                    if child.is_dir():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        except OSError as exc:
            raise OverseerError(f"cannot clear the {info.name} cache {info.path}: {cause(exc)}") from exc
    return removed
