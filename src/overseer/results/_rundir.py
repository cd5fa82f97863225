"""Content-hashed run directories, written atomically, and the versions that produced them.

A run's directory name is ``<pillar>-<hash>`` where the hash covers the resolved config, so the
same config always maps to the same directory and a finished run is reused instead of redone.
Everything is first written to a hidden temporary directory that is renamed into place only
when the run succeeds: Ctrl-C, a crash or a full disk leave no half-written run behind.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

from overseer.errors import OverseerError

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


class RunWriter:
    """Context manager that builds a run in a temporary directory and publishes it on success.

    >>> with RunWriter("w2s", {"seed": 0}, runs_dir=tmp) as run:   # doctest: +SKIP
    ...     run.write_json("metrics.json", {...})
    >>> run.path   # runs/w2s-<hash>, present only if the block finished
    """

    def __init__(self, pillar: str, config: Mapping[str, Any], runs_dir: str | Path | None = None):
        self.pillar = pillar
        self.config = dict(config)
        self.path = run_path(pillar, config, runs_dir)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.started = datetime.now(UTC)

    def __enter__(self) -> RunWriter:
        try:
            self.tmp.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp.mkdir()
            write_json(
                self.tmp / "config.json",
                {"pillar": self.pillar, "config": self.config, "hash": self.path.name.split("-")[-1]},
            )
            write_json(self.tmp / "versions.json", versions())
        except OSError as exc:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise OverseerError(f"cannot write run directory {self.tmp.parent}: {exc.strerror or exc}") from exc
        return self

    def file(self, name: str) -> Path:
        """Path of a file inside the run being written."""
        return self.tmp / name

    def write_json(self, name: str, obj: Any) -> Path:
        """Write a JSON file into the run."""
        write_json(self.tmp / name, obj)
        return self.tmp / name

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
                raise OverseerError(f"could not finish writing the run: {exc.strerror or exc}") from exc
            return
        if not (self.tmp / COMPLETE_MARKER).is_file():
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise RuntimeError(f"run finished without writing {COMPLETE_MARKER}")
        if not is_main_process():  # rank 0 publishes the same run
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        try:
            if self.path.exists():
                shutil.rmtree(self.path)
            os.replace(self.tmp, self.path)
        except OSError as exc:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise OverseerError(f"could not publish run {self.path}: {exc.strerror or exc}") from exc
