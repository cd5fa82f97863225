"""An SQLite index of every finished run under a runs directory, for listing and comparing.

The index is a cache of what the run directories hold: it is rebuilt from them whenever it is
missing, stale or damaged, so deleting a run directory (or the index) never leaves it wrong for
long. A failure to write it (full disk, read-only directory) is a warning, never an error.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import pandas as pd

from overseer._storage import cause, warn
from overseer.results._rundir import DEFAULT_RUNS_DIR, is_finished, is_main_process

T = TypeVar("T")

INDEX_NAME = "index.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    name TEXT PRIMARY KEY,
    pillar TEXT NOT NULL,
    created TEXT NOT NULL,
    summary TEXT NOT NULL,
    config TEXT NOT NULL
)
"""


def _connect(runs_dir: Path) -> sqlite3.Connection:
    runs_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(runs_dir / INDEX_NAME, timeout=30)
    conn.execute(_SCHEMA)
    return conn


def _is_damaged(exc: BaseException) -> bool:
    """True for 'file is not a database', 'database disk image is malformed' (not: locked, read-only, full)."""
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


def _attempt(root: Path, action: Callable[[sqlite3.Connection], T], sync_first: bool) -> T:
    with closing(_connect(root)) as conn, conn:
        if sync_first:
            _sync(conn, root)
        return action(conn)


def _on_index(root: Path, action: Callable[[sqlite3.Connection], T]) -> T:
    """``action`` in one transaction on the index; a damaged index is removed, rebuilt and tried once more."""
    try:
        return _attempt(root, action, sync_first=False)
    except sqlite3.DatabaseError as exc:
        if not _is_damaged(exc):
            raise
        warn(f"the run index {root / INDEX_NAME} is damaged ({cause(exc)}); rebuilding it from the run directories")
        for suffix in ("", "-journal", "-wal", "-shm"):
            (root / f"{INDEX_NAME}{suffix}").unlink(missing_ok=True)
        return _attempt(root, action, sync_first=True)


def index_run(path: Path, pillar: str, summary: Mapping[str, Any], config: Mapping[str, Any], created: str) -> None:
    """Record a finished run in its runs directory's index (insert or replace); rank 0 only.

    The run is already published when this is called, and the index is only a cache of the run
    directories: a failure here (full disk, read-only or damaged index) is one warning, never an error.
    """
    if not is_main_process():
        return
    row = (path.name, pillar, created, json.dumps(summary, default=str), json.dumps(config, default=str))
    try:
        _on_index(path.parent, lambda conn: conn.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?)", row))
    except (sqlite3.Error, OSError) as exc:
        warn(f"could not add run {path.name} to the index {path.parent / INDEX_NAME} ({cause(exc)}); the run is "
             "published, and the index catches up from the run directories when it is next read")


def _summary_from_dir(path: Path) -> tuple[str, dict[str, Any], dict[str, Any], str] | None:
    try:
        cfg = json.loads((path / "config.json").read_text())
        summary = json.loads((path / "summary.json").read_text()) if (path / "summary.json").is_file() else {}
    except (OSError, json.JSONDecodeError):
        return None
    created = summary.pop("created", "") if isinstance(summary, dict) else ""
    return cfg.get("pillar", path.name.split("-")[0]), summary, cfg.get("config", {}), created


def _finished_dirs(root: Path) -> dict[str, Path]:
    return {p.name: p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and is_finished(p)}


def _sync(conn: sqlite3.Connection, root: Path) -> None:
    present = _finished_dirs(root)
    known = {row[0] for row in conn.execute("SELECT name FROM runs")}
    for name in known - present.keys():
        conn.execute("DELETE FROM runs WHERE name = ?", (name,))
    for name in present.keys() - known:
        found = _summary_from_dir(present[name])
        if found is not None:
            pillar, summary, config, created = found
            conn.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?)",
                (name, pillar, created, json.dumps(summary), json.dumps(config)),
            )


def sync_index(runs_dir: str | Path | None = None) -> None:
    """Add finished runs missing from the index and drop entries whose directory is gone.

    A damaged index is rebuilt from the run directories; one that cannot be written is a warning.
    """
    root = Path(runs_dir or DEFAULT_RUNS_DIR)
    if not root.is_dir():
        return
    try:
        _on_index(root, lambda conn: _sync(conn, root))
    except (sqlite3.Error, OSError) as exc:
        warn(f"cannot update the run index {root / INDEX_NAME} ({cause(exc)})")


def _rows_from_dirs(root: Path, pillar: str | None) -> list[tuple[str, str, str, str]]:
    """What the index would return, read from the run directories themselves."""
    rows = []
    for name, path in _finished_dirs(root).items():
        found = _summary_from_dir(path)
        if found is not None and (pillar is None or found[0] == pillar):
            rows.append((name, found[0], found[3], json.dumps(found[1])))
    return sorted(rows, key=lambda r: r[2])


def list_runs(runs_dir: str | Path | None = None, pillar: str | None = None) -> pd.DataFrame:
    """One row per finished run: name, pillar, created, then the run's summary fields as columns.

    The index is brought up to date first (rebuilt if damaged); when it cannot be used at all
    (read-only, locked, full disk) the run directories are read directly, with one warning.
    """
    root = Path(runs_dir or DEFAULT_RUNS_DIR)
    import pandas as pd  # here, not at import: every run imports the results layer, few list runs

    empty = pd.DataFrame(columns=["name", "pillar", "created"])
    if not root.is_dir():
        return empty
    where = " WHERE pillar = ?" if pillar else ""
    query = f"SELECT name, pillar, created, summary FROM runs{where} ORDER BY created"

    def select(conn: sqlite3.Connection) -> list[tuple[str, str, str, str]]:
        _sync(conn, root)
        return conn.execute(query, (pillar,) if pillar else ()).fetchall()

    try:
        rows = _on_index(root, select)
    except (sqlite3.Error, OSError) as exc:
        warn(f"cannot use the run index {root / INDEX_NAME} ({cause(exc)}); reading the run directories instead")
        rows = _rows_from_dirs(root, pillar)
    records = [{"name": n, "pillar": p, "created": c, **json.loads(s)} for n, p, c, s in rows]
    return pd.DataFrame.from_records(records, columns=None) if records else empty


def load_config(runs_dir: str | Path | None, name: str) -> dict[str, Any]:
    """The resolved config a run was made from."""
    return json.loads((Path(runs_dir or DEFAULT_RUNS_DIR) / name / "config.json").read_text())["config"]
