"""Content-hashed run directories and the versions that produced them.

A run's directory name is ``<pillar>-<hash>`` where the hash covers the resolved config, so the
same config always maps to the same directory and a finished run is reused instead of redone
(:mod:`overseer.results._lifecycle` starts, writes and publishes runs).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

DEFAULT_RUNS_DIR = Path("runs")
COMPLETE_MARKER = "metrics.json"
_TRACKED_PACKAGES = ("overseer", "torch", "transformers", "numpy", "scikit-learn", "datasets", "pandas")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _jsonable(obj.item())
    return obj


def config_hash(config: Mapping[str, Any]) -> str:
    """Short sha256 of the canonical JSON of ``config``: the run's identity."""
    canonical = json.dumps(_jsonable(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def run_path(pillar: str, config: Mapping[str, Any], runs_dir: str | Path | None = None) -> Path:
    """The directory a run of ``config`` lives in (whether or not it exists yet)."""
    return Path(runs_dir or DEFAULT_RUNS_DIR) / f"{pillar}-{config_hash(config)}"


def is_finished(path: Path) -> bool:
    """True when ``path`` is a complete run (its metrics were written last, atomically)."""
    return (path / COMPLETE_MARKER).is_file() and (path / "config.json").is_file()


def versions() -> dict[str, Any]:
    """Python, platform and package versions, recorded in every run."""
    found: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _TRACKED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file then rename); NaN/inf become null."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")  # per process: concurrent writers never share it
    tmp.write_text(json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def is_main_process() -> bool:
    """False in ranks 1, 2, ... of a ``torchrun`` or ``accelerate launch`` job (``$RANK``).

    Every rank computes the same results; only rank 0 writes them, so ranks never race to
    publish one run directory or job.
    """
    return os.environ.get("RANK", "0").strip() in ("", "0")
