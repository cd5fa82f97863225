"""Content-hashed weak-to-strong jobs and the on-disk store that keeps their outputs.

A run is three kinds of job per seed, each named by a hash of exactly what determines its output:

- ``weak``: the weak model fitted on weak-train ground truth; outputs its P(class 1) on the
  student split (the weak labels) and on the test split.
- ``ceiling``: the strong model fitted on weak-train ground truth; outputs on the same two splits.
- ``student``: the strong model trained by a method from a weak job's labels; its key includes
  the weak job's key, so new weak labels always mean a new student.
- ``baseline``: the noise-matched baseline: the same method trained on the student split's
  ground truth flipped at the weak labels' own class-conditional error rates
  (:mod:`overseer.w2s.synthetic`), once per flip draw (``baseline_draws``); keyed like a student,
  plus the number of draws.

Nothing about the pair a job serves enters its key: the weak job of ``minilm-l6`` is the same for
every strong model above it, so a sweep computes it once and every pair (and every later run or
sweep in the same runs directory) loads it. The store writes each job to a temporary directory
and renames it into place, so a killed process leaves either a whole job or none; each read
checks the job's recorded size and checksum, and a job another process is computing is waited
for, then loaded (:meth:`JobStore.load_or_compute`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from overseer._storage import FileLock, cause, publish_directory, remove_directory, warn
from overseer.errors import OverseerError
from overseer.results import DEFAULT_RUNS_DIR, config_hash, is_main_process, write_json
from overseer.w2s.config import W2SConfig

JOB_KINDS = ("weak", "ceiling", "student", "baseline")
FROM_WEAK_LABELS = ("student", "baseline")
"""Job kinds trained from a weak job's outputs (their key includes the weak job's)."""
JOBS_DIR = ".jobs"
COMPUTED_LOG = "computed.jsonl"


@dataclass(frozen=True)
class Job:
    """One unit of work: what to train, on which data and seed, with which settings.

    ``cfg`` is the pair's config; a job reads only the fields its kind depends on (see
    :meth:`identity`). ``learner_args`` are the learner's keyword arguments for the model this job
    trains (a sweep may give each model its own, e.g. a learning rate).
    """

    kind: str
    cfg: W2SConfig
    seed: int
    dataset_fingerprint: str
    learner_args: dict[str, Any] = field(default_factory=dict)
    weak_key: str | None = None
    """Student and baseline jobs only: the key of the weak job whose labels (or error rates) they learn from."""

    def __post_init__(self) -> None:
        if self.kind not in JOB_KINDS:
            raise ValueError(f"job kind must be one of {JOB_KINDS}; got {self.kind!r}")
        if (self.kind in FROM_WEAK_LABELS) != (self.weak_key is not None):
            raise ValueError("student and baseline jobs need weak_key, and only they have one")

    @property
    def model(self) -> str | None:
        """The model this job trains (None for a weak supervisor that is pure label noise)."""
        return self.cfg.weak_model if self.kind == "weak" else self.cfg.strong

    def identity(self) -> dict[str, Any]:
        """Everything that changes this job's outputs, and nothing else."""
        from overseer.models import resolve_model

        c = self.cfg
        resolved = c.identity()  # layer and pooling with the model's defaults filled in
        role = "weak" if self.kind == "weak" else "strong"
        ident: dict[str, Any] = {
            "kind": self.kind,
            "data": {
                "dataset": c.dataset, "dataset_args": c.dataset_args, "fingerprint": self.dataset_fingerprint,
                "n_train": c.n_train, "n_label": c.n_label, "n_test": c.n_test, "seed": self.seed,
            },
            "model": self.cfg.weak if self.kind == "weak" else self.model,  # a weak spec with its noise
            "weights": None if self.model is None else resolve_model(self.model).fingerprint(),
            "layer": resolved[f"{role}_layer"],
            "pooling": resolved[f"{role}_pooling"],
            "learner": c.learner,
            "learner_args": self.learner_args,
            "head": c.to_dict()["head"],
            "max_length": c.max_length,
        }
        if self.kind in FROM_WEAK_LABELS:
            ident.update(weak_job=self.weak_key, method=c.method, method_args=c.method_args)
        if self.kind == "baseline":
            ident["draws"] = c.baseline_draws
        return ident

    @property
    def key(self) -> str:
        """``<kind>-<hash of identity>``: the job's directory name in the store."""
        return f"{self.kind}-{config_hash(self.identity())}"

    def describe(self) -> str:
        """A short human label for progress bars and failure reports."""
        extra = ""
        if self.kind == "student":
            extra = f" [{self.cfg.method} from {self.cfg.weak}]"
        elif self.kind == "baseline":
            extra = f" [{self.cfg.method} from truth noised like {self.cfg.weak}]"
        model = self.cfg.weak if self.kind == "weak" else self.model
        return f"{self.kind} {model}{extra} on {self.cfg.dataset} seed {self.seed}"


class JobStore:
    """Finished jobs under ``<runs_dir>/.jobs/<key>/``: ``outputs.npz`` plus ``job.json``.

    ``job.json`` is written last inside a temporary directory that is then renamed, so its
    presence in a job directory means the job is complete. It records the size and sha256 of
    ``outputs.npz``, which every read checks: a damaged job (truncated, bit-flipped, half-deleted)
    is removed with one warning and counts as missing, so it is computed again. Records written
    before checksums existed are used when their arrays load cleanly. Every job this store saves
    as freshly computed is also appended to ``computed.jsonl``, which shows what was ever
    recomputed. The store is a cache of work: a full or read-only disk while saving is one
    warning, and the job's outputs stay in memory for this process.
    """

    def __init__(self, runs_dir: str | Path | None = None):
        self.root = Path(runs_dir or DEFAULT_RUNS_DIR) / JOBS_DIR
        # What this process saved: ranks other than 0 of a multi-process job keep their results here only.
        self._saved: dict[str, tuple[dict[str, np.ndarray], float]] = {}  # key -> (outputs, seconds)
        self._verified: set[str] = set()  # keys whose record on disk this process has checked
        self._warned_write = False

    def path(self, key: str) -> Path:
        """Directory of job ``key`` (whether or not it exists)."""
        return self.root / key

    def has(self, key: str) -> bool:
        """True when job ``key`` finished and was saved whole (a damaged record is removed, with a warning)."""
        if key in self._saved or key in self._verified:
            return True
        path = self.path(key)
        if not (path / "job.json").is_file() and not (path / "outputs.npz").is_file():
            return False
        problem = _damage(path)
        if problem is None:
            self._verified.add(key)
            return True
        warn(f"job {key} in {path} is damaged ({problem}); recomputing it")
        remove_directory(path, aside=f".{path.name}.damaged-{os.getpid()}")
        return False

    def load(self, key: str) -> dict[str, np.ndarray]:
        """The arrays job ``key`` produced."""
        if key in self._saved:
            return dict(self._saved[key][0])
        if not self.has(key):
            raise OverseerError(f"job {key} is missing from {self.root} (or was damaged and removed); run again "
                                "to compute it")
        with np.load(self.path(key) / "outputs.npz") as data:
            return {name: data[name] for name in data.files}

    def seconds(self, key: str) -> float:
        """How long job ``key`` took to compute."""
        if key in self._saved:
            return self._saved[key][1]
        self.load(key)  # checked, or a one-line error
        return float(json.loads((self.path(key) / "job.json").read_text())["seconds"])

    def lock(self, job: Job) -> AbstractContextManager[object]:
        """The lock that keeps two processes from computing ``job`` at once (rank 0 of a multi-process job only)."""
        if not is_main_process():  # all ranks compute each job together; only rank 0 writes it
            return nullcontext()
        return FileLock(self.root / f".{job.key}.lock",
                        waiting=f"waiting for another process computing job {job.key} ({job.describe()})")

    def load_or_compute(self, job: Job, compute: Callable[[], Mapping[str, np.ndarray]],
                        force: bool = False) -> tuple[dict[str, np.ndarray], bool]:
        """The outputs of ``job``: loaded when stored, else computed by ``compute()`` and saved.

        While this process computes the job it holds the job's lock; another process asking for
        the same job waits (one line says so), then loads it instead of computing it again.

        Returns:
            The outputs, and True when they were computed by this call.
        """
        if not force and self.has(job.key):
            return self.load(job.key), False
        with self.lock(job):
            if not force and self.has(job.key):  # another process finished it while we waited
                return self.load(job.key), False
            started = time.perf_counter()
            outputs = {k: np.asarray(v) for k, v in compute().items()}
            self.save(job, outputs, time.perf_counter() - started)
        return dict(outputs), True

    def save_once(self, job: Job, outputs: Mapping[str, np.ndarray], seconds: float) -> bool:
        """Save outputs computed elsewhere (a Ray task) under the job's lock, unless the job is stored already.

        The lock is the one :meth:`load_or_compute` holds while computing, so a local sweep or run
        computing the same job is waited for, and a job stored meanwhile is kept, not overwritten.

        Returns:
            True when these outputs were saved.
        """
        with self.lock(job):
            if self.has(job.key):
                return False
            self.save(job, outputs, seconds)
        return True

    def save(self, job: Job, outputs: Mapping[str, np.ndarray], seconds: float) -> Path:
        """Publish a finished job atomically and log it as computed (rank 0 of a multi-process job only).

        A disk that is full or read-only is one warning: the outputs stay in memory for this process.
        """
        final = self.path(job.key)
        arrays = {k: np.asarray(v) for k, v in outputs.items()}
        self._saved[job.key] = (arrays, seconds)
        if not is_main_process():
            return final
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            np.savez(tmp / "outputs.npz", **arrays)
            data = (tmp / "outputs.npz").read_bytes()
            write_json(tmp / "job.json", {
                "key": job.key, "identity": job.identity(), "seconds": round(seconds, 3),
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "outputs": {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()},
            })
            publish_directory(tmp, final)  # another process that stored the same job a moment ago: theirs is kept
            with open(self.root / COMPUTED_LOG, "a") as log:  # one short line per write: appends stay whole
                log.write(json.dumps({"key": job.key, "pid": os.getpid(), "time": time.time()}) + "\n")
        except BaseException as exc:  # a full disk, or Ctrl-C while writing: no partial job is left
            shutil.rmtree(tmp, ignore_errors=True)
            if not isinstance(exc, OSError):
                raise
            if not self._warned_write:
                self._warned_write = True
                warn(f"could not store job {job.key} in {self.root} ({cause(exc)}); its outputs are kept in memory "
                     "for this process, and a later run computes it again")
            return final
        self._verified.add(job.key)
        return final

    def computed(self) -> list[str]:
        """Keys of every job ever computed into this store, in order (repeats mean recomputation)."""
        log = self.root / COMPUTED_LOG
        if not log.is_file():
            return []
        keys = []
        for line in log.read_text().splitlines():
            try:
                keys.append(json.loads(line)["key"])
            except (ValueError, KeyError, TypeError):  # a line cut short by a crash or a full disk
                continue
        return keys


def _damage(path: Path) -> str | None:
    """What is wrong with the job record at ``path``, or None when it is whole."""
    try:
        record = json.loads((path / "job.json").read_text())
        float(record["seconds"])
    except FileNotFoundError:
        return "job.json is missing"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"job.json cannot be read: {cause(exc) if isinstance(exc, OSError) else type(exc).__name__}"
    try:
        data = (path / "outputs.npz").read_bytes()
    except OSError as exc:
        return f"outputs.npz cannot be read: {cause(exc)}"
    expected = record.get("outputs")
    if isinstance(expected, dict):
        if len(data) != expected.get("bytes"):
            return f"outputs.npz has {len(data)} bytes, {expected.get('bytes')} were written"
        if hashlib.sha256(data).hexdigest() != expected.get("sha256"):
            return "outputs.npz does not match its checksum"
        return None
    try:  # written before records had checksums: usable if every array loads
        with np.load(io.BytesIO(data)) as arrays:
            for name in arrays.files:
                arrays[name]
    except Exception as exc:  # noqa: BLE001 - zipfile, numpy and pickle errors alike mean a damaged file
        return f"outputs.npz cannot be read: {type(exc).__name__}"
    return None


