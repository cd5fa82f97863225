"""``overseer runs``: list finished runs of every pillar, or compare some side by side."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MISSING = "-"
"""How a config value that a run does not have at all is shown."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer runs``."""
    p = sub.add_parser(
        "runs", help="list runs (all pillars) or compare some: overseer runs NAME NAME",
        description="Without names: every finished run with its headline numbers and data sizes. With names: "
        "their numbers side by side, then every resolved config value that differs between them (nested "
        f"values as dotted keys such as method_args.aux_coef; {MISSING} where a run has no such value), then "
        "every library version, lock digest, commit or machine detail in versions.json that differs.",
    )
    p.add_argument("names", nargs="*", help="run names to compare (default: list all)")
    p.add_argument("--out", help="runs directory (default: ./runs)")
    p.add_argument("--pillar", help="only runs of this pillar (w2s, selfcorrect, ...)")
    p.add_argument("--json", action="store_true",
                   help='print JSON for scripts: {"runs": [...]}, plus "differing": {key: {run: value}} when '
                   "comparing (a run without the key is left out of its mapping)")
    p.set_defaults(func=runs_command)


def runs_command(args: argparse.Namespace) -> int:
    """List runs, or show the chosen runs' summaries and differing config values side by side."""
    from overseer._names import safe_name

    names = list(dict.fromkeys(safe_name(n, "run name") for n in args.names))  # each a run directory's name

    from overseer.errors import OverseerError
    from overseer.results import DEFAULT_RUNS_DIR, list_runs

    runs_dir = Path(args.out or DEFAULT_RUNS_DIR)
    frame = list_runs(runs_dir, pillar=args.pillar)
    if frame.empty and not names:
        print(json.dumps({"runs": []}) if args.json else f"no finished runs in {runs_dir}")
        return 0
    known = list(frame["name"])
    missing = [n for n in names if n not in set(known)]
    if missing:
        raise OverseerError(f"unknown run {missing[0]!r} in {runs_dir}; allowed: {', '.join(known) or '(none)'}")
    rows = {row["name"]: _clean(row) for row in frame.to_dict("records")}
    chosen = names or known
    records = {n: _record(runs_dir / n) for n in chosen}
    listed = [{**rows[n], "sizes": _sizes(records[n])} for n in chosen]
    shown = [{**row, "sizes": _format_sizes(row["sizes"])} for row in listed]
    if not names:
        if args.json:
            print(json.dumps({"runs": listed}, indent=2, default=str))
        else:
            print(_table(shown, transpose=False))
        return 0

    configs = {n: _flatten(_resolved_config(runs_dir / n, records[n])) for n in names}
    differing = _differing(configs)
    differing_versions = _differing({n: _versions(runs_dir / n) for n in names})
    if args.json:
        def present(table: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
            return {k: {n: v for n, v in per_run.items() if v is not _ABSENT} for k, per_run in table.items()}

        out = {"runs": listed, "differing": present(differing), "differing_versions": present(differing_versions)}
        print(json.dumps(out, indent=2, default=str))
        return 0
    print(_table(shown, transpose=True))
    if len(names) < 2:
        return 0
    if not differing:
        print("\nconfigs are identical")
    else:
        print("\nconfig values that differ:")
        print(_table([{"key": k, **per_run} for k, per_run in differing.items()], transpose=False, index="key"))
    if differing_versions:  # the same config under other libraries can give other numbers
        print("\nversions that differ:")
        print(_table([{"key": k, **per_run} for k, per_run in differing_versions.items()], transpose=False,
                     index="key"))
    return 0


# --------------------------------------------------------------------------- reading runs

_ABSENT = object()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _record(path: Path) -> dict[str, Any]:
    """The run's ``metrics.json`` (``{}`` when unreadable)."""
    record = _read_json(path / "metrics.json")
    return record if isinstance(record, dict) else {}


def _versions(path: Path) -> dict[str, Any]:
    """The run's ``versions.json`` as dotted keys: library versions, the lock's digest, commit and machine.

    The lock file's path is left out (the same lock in another clone is the same lock), and so is an
    empty ``lock.differs`` (no package differs from the lock), so only what can change a result shows.
    """
    found = _read_json(path / "versions.json")
    flat = _flatten(found) if isinstance(found, dict) else {}
    flat.pop("lock.path", None)
    return {k: v for k, v in flat.items() if not isinstance(v, list) or v}


def _resolved_config(path: Path, record: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved config: from metrics.json, else resolved_config.json, else the hashed config.json."""
    for found in (record.get("config"), _read_json(path / "resolved_config.json"),
                  (_read_json(path / "config.json") or {}).get("config")):
        if isinstance(found, dict):
            return found
    return {}


def _sizes(record: Mapping[str, Any]) -> dict[str, Any]:
    """The data a run used: items per suite, or its weak-to-strong splits and the dataset's size."""
    n_items = record.get("n_items")
    if isinstance(n_items, Mapping) and n_items:
        return dict(n_items)
    cfg = record.get("config")
    if isinstance(cfg, Mapping) and "n_train" in cfg and "n_test" in cfg:
        sizes = {"train": cfg["n_train"], "label": cfg.get("n_label") or cfg["n_train"], "test": cfg["n_test"]}
        dataset = record.get("dataset")
        if isinstance(dataset, Mapping) and "size" in dataset:
            sizes["dataset"] = dataset["size"]
        return sizes
    return {}


def _format_sizes(sizes: Mapping[str, Any]) -> str:
    return ", ".join(f"{what} {n}" for what, n in sizes.items())


# --------------------------------------------------------------------------- comparing


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"method_args": {"aux_coef": 0.5}}`` -> ``{"method_args.aux_coef": 0.5}``; empty mappings vanish."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _differing(configs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every key whose value is not the same in all runs (absent in some counts as different), sorted."""
    keys = sorted({k for flat in configs.values() for k in flat})
    out = {}
    for key in keys:
        per_run = {n: flat.get(key, _ABSENT) for n, flat in configs.items()}
        shown = {"\0absent" if v is _ABSENT else json.dumps(v, sort_keys=True, default=str) for v in per_run.values()}
        if len(shown) > 1:
            out[key] = per_run
    return out


# --------------------------------------------------------------------------- printing


def _clean(row: Mapping[str, Any]) -> dict[str, Any]:
    """An index row without the summary fields this run does not have (NaN in the joined table)."""
    return {k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}


def _show(value: Any) -> str:
    if value is _ABSENT:
        return MISSING
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"
    return json.dumps(value, default=str)


def _table(rows: list[dict[str, Any]], transpose: bool, index: str | None = None) -> str:
    """Rows as an aligned text table.

    Args:
        rows: one mapping per row; values are shown with :func:`_show`, missing ones as ``-``.
        transpose: put each row in a column headed by its ``name`` (runs side by side).
        index: the field shown as the left-aligned first column.
    """
    import pandas as pd

    frame = pd.DataFrame.from_records([{k: _show(v) for k, v in row.items()} for row in rows])
    frame = frame.fillna(MISSING)
    if transpose:
        return frame.set_index("name").T.to_string()
    if index is not None:
        frame = frame.set_index(index)
        frame.index.name = None
        return frame.to_string()
    return frame.to_string(index=False)
