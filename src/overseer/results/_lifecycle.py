"""One run lifecycle for every pillar: start, reuse or write, publish atomically, index, return a RunResult.

A pillar's ``run`` reads::

    writer = start_run("w2s", identity, runs_dir, force=force, resolved=resolved)
    if writer.existing:                   # a finished run of this exact config: reused as it is
        return writer.existing
    ...                                   # the experiment
    with writer:                          # files go to a hidden temporary directory
        predictions.to_parquet(writer.file("predictions.parquet"))
        writer.finish(metrics, timings=timings, summary=headline, per_seed=per_seed)
    return writer.result                  # published by rename, indexed in runs/index.sqlite

Two processes starting the same run take turns: :func:`start_run` locks the run (a ``.<name>.lock``
file beside its directory, released when the run is published or abandoned, or when its process
dies); the second prints that it is waiting, then reuses the run the first published.

Every ``metrics.json`` has the same top level: ``metrics`` (the pillar's estimates, each
``{value, ci_low, ci_high, reason}``), ``config`` (the resolved config), ``timings`` (``wall_s``
and the pillar's own), then any pillar-specific keys. Ctrl-C, a crash or a full disk inside the
``with`` block leave no half-written run behind.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from overseer._storage import FileLock, jsonable, publish_directory
from overseer._storage import write_json as _write_json
from overseer.errors import OverseerError
from overseer.results._index import index_run
from overseer.results._rundir import COMPLETE_MARKER, is_finished, is_main_process, run_path, versions

RECORD_KEYS = ("metrics", "config", "timings")
"""The top-level keys every ``metrics.json`` has, in this order; pillar-specific keys follow them."""

_SUMMARY_LINES: dict[str, Callable[[RunResult], str]] = {}
F = TypeVar("F", bound=Callable[..., str])


@dataclass(frozen=True)
class RunResult:
    """What every pillar's ``run`` returns, whether the run was computed now or reused.

    ``metrics`` is the ``metrics`` section of the run's ``metrics.json`` and ``record`` the whole
    file (``metrics``, ``config``, ``timings`` and the pillar's own keys), exactly as read back from
    disk; ``summary`` holds the headline numbers that ``overseer runs`` lists.
    """

    path: Path
    metrics: dict[str, Any]
    reused: bool
    wall_s: float
    """Seconds this call took: the whole run, or only finding and reading it when reused."""
    summary: dict[str, Any]
    pillar: str
    record: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def config(self) -> dict[str, Any]:
        """The resolved config the run was made from."""
        return self.record.get("config", {})

    @property
    def timings(self) -> dict[str, Any]:
        """Where the time went (``wall_s`` and the pillar's own entries)."""
        return self.record.get("timings", {})

    def summary_line(self) -> str:
        """The pillar's short human summary (see :func:`summary_formatter`), else the headline numbers."""
        formatter = _SUMMARY_LINES.get(self.pillar)
        if formatter is not None:
            return formatter(self)
        return "; ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in self.summary.items())


def summary_formatter(pillar: str) -> Callable[[F], F]:
    """Decorator: ``fn(result) -> str`` becomes :meth:`RunResult.summary_line` for ``pillar``'s runs."""

    def register(fn: F) -> F:
        _SUMMARY_LINES[pillar] = fn
        return fn

    return register


def _load(path: Path, seconds_since: float) -> RunResult | None:
    """The finished run at ``path``, or None when it is incomplete or in an older layout."""
    if not is_finished(path):
        return None
    try:
        record = json.loads((path / COMPLETE_MARKER).read_text())
        header = json.loads((path / "config.json").read_text())
        summary_file = path / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or any(key not in record for key in RECORD_KEYS):
        return None
    summary.pop("created", None)
    pillar = header.get("pillar", path.name.rsplit("-", 1)[0])
    wall = round(time.perf_counter() - seconds_since, 3)
    return RunResult(path, record["metrics"], True, wall, summary, pillar, record)


def read_run(path: str | Path) -> RunResult:
    """A finished run read back from its directory (``reused`` is True)."""
    path = Path(path)
    found = _load(path, time.perf_counter())
    if found is None:
        if is_finished(path):
            raise OverseerError(
                f"run {path.name} has a metrics.json without {', '.join(RECORD_KEYS)} (written by an older overseer "
                "or damaged); run its config again to rewrite it"
            )
        raise OverseerError(f"{str(path)!r} is not a finished run (it needs config.json and metrics.json)")
    return found


class RunWriter:
    """Context manager that builds a run in a temporary directory and publishes it on success.

    Use :func:`start_run` to get one. Inside the ``with`` block write files with :meth:`file` or
    :meth:`write_json`, then call :meth:`finish` with the metrics; on leaving the block the
    directory is renamed into place, indexed, and :attr:`result` is set.

    >>> with RunWriter("w2s", {"seed": 0}, runs_dir=tmp) as run:   # doctest: +SKIP
    ...     run.finish({"accuracy": {"value": 0.7, "ci_low": 0.6, "ci_high": 0.8}})
    >>> run.result.path   # runs/w2s-<hash>, present only if the block finished
    """

    def __init__(self, pillar: str, config: Mapping[str, Any], runs_dir: str | Path | None = None,
                 resolved: Mapping[str, Any] | None = None):
        self.pillar = pillar
        self.config = dict(config)
        self.resolved = dict(resolved) if resolved is not None else dict(config)
        self.path = run_path(pillar, config, runs_dir)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.started = datetime.now(UTC)
        self.existing: RunResult | None = None
        """The finished run of this config, found by :func:`start_run` (None when it must be computed)."""
        self._result: RunResult | None = None
        self._t0 = time.perf_counter()
        self._finished: tuple[dict[str, Any], str, dict[str, Any]] | None = None  # summary, created, record
        self._lock: FileLock | None = None  # taken by start_run until the run is published or abandoned

    def release(self) -> None:
        """Let another process compute this run (done on leaving the ``with`` block).

        The lock also goes when the writer is garbage-collected or its process ends.
        """
        lock = getattr(self, "_lock", None)  # absent when __init__ failed
        if lock is not None:
            lock.release()

    def __enter__(self) -> RunWriter:
        try:
            self.tmp.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp.mkdir()
            _write_json(
                self.tmp / "config.json",
                {"pillar": self.pillar, "config": self.config, "hash": self.path.name.split("-")[-1]},
            )
            _write_json(self.tmp / "resolved_config.json", self.resolved)
            _write_json(self.tmp / "versions.json", versions())
        except OSError as exc:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise OverseerError(f"cannot write run directory {self.tmp.parent}: {exc.strerror or exc}") from exc
        return self

    def file(self, name: str) -> Path:
        """Path of a file inside the run being written."""
        return self.tmp / name

    def write_json(self, name: str, obj: Any) -> Path:
        """Write a JSON file into the run."""
        _write_json(self.tmp / name, obj)
        return self.tmp / name

    def finish(self, metrics: Mapping[str, Any], *, timings: Mapping[str, Any] | None = None,
               summary: Mapping[str, Any] | None = None, **extra: Any) -> None:
        """Write ``summary.json`` and, last, ``metrics.json``: the run is complete once the block ends.

        Args:
            metrics: the run's estimates (``{value, ci_low, ci_high, reason}`` each), nested as the
                pillar likes.
            timings: the pillar's timings; ``wall_s`` (seconds since :func:`start_run`) is added.
            summary: flat headline numbers for the runs index.
            **extra: pillar-specific top-level keys of ``metrics.json`` (e.g. ``per_seed``).
        """
        clash = sorted(set(extra) & set(RECORD_KEYS))
        if clash:
            raise ValueError(f"{clash[0]!r} is a standard metrics.json key; pass it as an argument of finish()")
        created = datetime.now(UTC).isoformat(timespec="seconds")
        record = {
            "metrics": dict(metrics),
            "config": self.resolved,
            "timings": {"wall_s": round(time.perf_counter() - self._t0, 2), **(timings or {})},
            **extra,
        }
        record = json.loads(json.dumps(jsonable(record)))  # what a reader of the file gets, also in memory
        headline = json.loads(json.dumps(jsonable(dict(summary or {}))))
        self.write_json("summary.json", {**headline, "created": created})
        self.write_json(COMPLETE_MARKER, record)
        self._finished = (headline, created, record)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._exit(exc_type, exc)
        finally:
            self.release()

    def _exit(self, exc_type: type[BaseException] | None, exc: BaseException | None) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
                raise OverseerError(f"could not finish writing the run: {exc.strerror or exc}") from exc
            return
        if not (self.tmp / COMPLETE_MARKER).is_file():
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise RuntimeError(f"run finished without writing {COMPLETE_MARKER}")
        if is_main_process():  # other ranks of a multi-process job compute the same run; rank 0 publishes it
            self._publish()
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self._finished is not None:
            summary, _, record = self._finished
            wall = round(time.perf_counter() - self._t0, 3)
            self._result = RunResult(self.path, record["metrics"], False, wall, summary, self.pillar, record)

    @property
    def result(self) -> RunResult:
        """The published run, once the ``with`` block has ended after :meth:`finish`."""
        if self._result is None:
            raise RuntimeError("the run has no result yet: call finish() inside its `with` block")
        return self._result

    def _publish(self) -> None:
        try:
            publish_directory(self.tmp, self.path)
        except OSError as exc:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise OverseerError(f"could not publish run {self.path}: {exc.strerror or exc}") from exc
        if self._finished is not None:  # runs written without finish() join the index when it is next synced
            summary, created, _ = self._finished
            index_run(self.path, self.pillar, summary, self.config, created)


def start_run(pillar: str, config: Mapping[str, Any], runs_dir: str | Path | None = None, *, force: bool = False,
              resolved: Mapping[str, Any] | None = None) -> RunWriter:
    """Start a run of ``config``: find the finished run to reuse, or get the writer of a new one.

    Args:
        pillar: ``w2s``, ``selfcorrect``, ...: the first part of the directory name.
        config: the run's identity (every setting that changes its results); its hash names the
            directory ``<runs_dir>/<pillar>-<hash>``.
        runs_dir: where runs live (default ``runs/``).
        force: ignore a finished run of this config; the new one replaces it when published.
        resolved: the full resolved config recorded in ``resolved_config.json`` and
            ``metrics.json`` (default: ``config``).

    Returns:
        A :class:`RunWriter` whose ``existing`` is the finished run (``reused=True``) when there is
        one and ``force`` is off; runs written in an older layout are recomputed. A writer that
        must compute holds the run's lock until its ``with`` block ends: another process starting
        the same run meanwhile waits (one line says so), then reuses it.
    """
    writer = RunWriter(pillar, config, runs_dir, resolved=resolved)
    if not force:
        writer.existing = _load(writer.path, writer._t0)
        if writer.existing is not None:
            return writer
    if is_main_process():  # ranks of one multi-process job compute together; only rank 0 publishes
        writer._lock = FileLock(writer.path.with_name(f".{writer.path.name}.lock"),
                                waiting=f"waiting for another process computing run {writer.path.name}")
        writer._lock.acquire()
        if not force:  # it may have been finished while we waited for the lock
            writer.existing = _load(writer.path, writer._t0)
            if writer.existing is not None:
                writer.release()
    return writer
