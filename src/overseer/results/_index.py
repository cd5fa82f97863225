"""An SQLite index of every finished run under a runs directory, for listing and comparing.

The index is a cache of what the run directories hold: it is rebuilt from them whenever it is
missing or stale, so deleting a run directory (or the index) never leaves it wrong for long.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd

from overseer.results._rundir import DEFAULT_RUNS_DIR, is_finished, is_main_process

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


def index_run(path: Path, pillar: str, summary: Mapping[str, Any], config: Mapping[str, Any], created: str) -> None:
    """Record a finished run in its runs directory's index (insert or replace); rank 0 only."""
    if not is_main_process():
        return
    with closing(_connect(path.parent)) as conn, conn:
        conn.execute(
            "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?)",
            (path.name, pillar, created, json.dumps(summary, default=str), json.dumps(config, default=str)),
        )


def _summary_from_dir(path: Path) -> tuple[str, dict[str, Any], dict[str, Any], str] | None:
    try:
        cfg = json.loads((path / "config.json").read_text())
        summary = json.loads((path / "summary.json").read_text()) if (path / "summary.json").is_file() else {}
    except (OSError, json.JSONDecodeError):
        return None
    created = summary.pop("created", "") if isinstance(summary, dict) else ""
    return cfg.get("pillar", path.name.split("-")[0]), summary, cfg.get("config", {}), created


def sync_index(runs_dir: str | Path | None = None) -> None:
    """Add finished runs missing from the index and drop entries whose directory is gone."""
    root = Path(runs_dir or DEFAULT_RUNS_DIR)
    if not root.is_dir():
        return
    present = {p.name: p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and is_finished(p)}
    with closing(_connect(root)) as conn, conn:
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


def list_runs(runs_dir: str | Path | None = None, pillar: str | None = None) -> pd.DataFrame:
    """One row per finished run: name, pillar, created, then the run's summary fields as columns."""
    root = Path(runs_dir or DEFAULT_RUNS_DIR)
    sync_index(root)
    if not (root / INDEX_NAME).is_file():
        return pd.DataFrame(columns=["name", "pillar", "created"])
    with closing(_connect(root)) as conn:
        query = "SELECT name, pillar, created, summary FROM runs"
        rows = conn.execute(
            query + (" WHERE pillar = ?" if pillar else "") + " ORDER BY created", (pillar,) if pillar else ()
        ).fetchall()
    records = [{"name": n, "pillar": p, "created": c, **json.loads(s)} for n, p, c, s in rows]
    return (
        pd.DataFrame.from_records(records, columns=None)
        if records
        else pd.DataFrame(columns=["name", "pillar", "created"])
    )


def load_config(runs_dir: str | Path | None, name: str) -> dict[str, Any]:
    """The resolved config a run was made from."""
    return json.loads((Path(runs_dir or DEFAULT_RUNS_DIR) / name / "config.json").read_text())["config"]
