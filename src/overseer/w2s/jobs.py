"""Content-hashed weak-to-strong jobs and the on-disk store that keeps their outputs.

A run is three kinds of job per seed, each named by a hash of exactly what determines its output:

- ``weak``: the weak model fitted on weak-train ground truth; outputs its P(class 1) on the
  student split (the weak labels) and on the test split.
- ``ceiling``: the strong model fitted on weak-train ground truth; outputs on the same two splits.
- ``student``: the strong model trained by a method from a weak job's labels; its key includes
  the weak job's key, so new weak labels always mean a new student.

Nothing about the pair a job serves enters its key: the weak job of ``minilm-l6`` is the same for
every strong model above it, so a sweep computes it once and every pair (and every later run or
sweep in the same runs directory) loads it. The store writes each job to a temporary directory
and renames it into place, so a killed process leaves either a whole job or none.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from overseer.results import DEFAULT_RUNS_DIR, config_hash, is_main_process, write_json
from overseer.w2s.config import W2SConfig

JOB_KINDS = ("weak", "ceiling", "student")
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
    """Student jobs only: the key of the weak job whose labels the student learns from."""

    def __post_init__(self) -> None:
        if self.kind not in JOB_KINDS:
            raise ValueError(f"job kind must be one of {JOB_KINDS}; got {self.kind!r}")
        if (self.kind == "student") != (self.weak_key is not None):
            raise ValueError("a student job needs weak_key, and only a student job has one")

    @property
    def model(self) -> str:
        """The model this job trains."""
        return self.cfg.weak if self.kind == "weak" else self.cfg.strong

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
            "model": self.model,
            "weights": resolve_model(self.model).fingerprint(),
            "layer": resolved[f"{role}_layer"],
            "pooling": resolved[f"{role}_pooling"],
            "learner": c.learner,
            "learner_args": self.learner_args,
            "head": c.to_dict()["head"],
            "max_length": c.max_length,
        }
        if self.kind == "student":
            ident.update(weak_job=self.weak_key, method=c.method, method_args=c.method_args)
        return ident

    @property
    def key(self) -> str:
        """``<kind>-<hash of identity>``: the job's directory name in the store."""
        return f"{self.kind}-{config_hash(self.identity())}"

    def describe(self) -> str:
        """A short human label for progress bars and failure reports."""
        extra = f" [{self.cfg.method} from {self.cfg.weak}]" if self.kind == "student" else ""
        return f"{self.kind} {self.model}{extra} on {self.cfg.dataset} seed {self.seed}"


class JobStore:
    """Finished jobs under ``<runs_dir>/.jobs/<key>/``: ``outputs.npz`` plus ``job.json``.

    ``job.json`` is written last inside a temporary directory that is then renamed, so its
    presence in a job directory means the job is complete. Every job this store saves as freshly
    computed is also appended to ``computed.jsonl``, which shows what was ever recomputed.
    """

    def __init__(self, runs_dir: str | Path | None = None):
        self.root = Path(runs_dir or DEFAULT_RUNS_DIR) / JOBS_DIR
        # What this process saved: ranks other than 0 of a multi-process job keep their results here only.
        self._saved: dict[str, tuple[dict[str, np.ndarray], float]] = {}  # key -> (outputs, seconds)

    def path(self, key: str) -> Path:
        """Directory of job ``key`` (whether or not it exists)."""
        return self.root / key

    def has(self, key: str) -> bool:
        """True when job ``key`` finished and was saved."""
        return key in self._saved or (self.path(key) / "job.json").is_file()

    def load(self, key: str) -> dict[str, np.ndarray]:
        """The arrays job ``key`` produced."""
        if key in self._saved:
            return dict(self._saved[key][0])
        with np.load(self.path(key) / "outputs.npz") as data:
            return {name: data[name] for name in data.files}

    def seconds(self, key: str) -> float:
        """How long job ``key`` took to compute."""
        if key in self._saved:
            return self._saved[key][1]
        return float(json.loads((self.path(key) / "job.json").read_text())["seconds"])

    def save(self, job: Job, outputs: Mapping[str, np.ndarray], seconds: float) -> Path:
        """Publish a finished job atomically and log it as computed (rank 0 of a multi-process job only)."""
        final = self.path(job.key)
        self._saved[job.key] = ({k: np.asarray(v) for k, v in outputs.items()}, seconds)
        if not is_main_process():
            return final
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        np.savez(tmp / "outputs.npz", **{k: np.asarray(v) for k, v in outputs.items()})
        write_json(tmp / "job.json", {"key": job.key, "identity": job.identity(), "seconds": round(seconds, 3),
                                      "created": datetime.now(UTC).isoformat(timespec="seconds")})
        if final.exists():  # another process finished the same job first; theirs is as good
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        with open(self.root / COMPUTED_LOG, "a") as log:  # one short line per write: appends stay whole
            log.write(json.dumps({"key": job.key, "pid": os.getpid(), "time": time.time()}) + "\n")
        return final

    def computed(self) -> list[str]:
        """Keys of every job ever computed into this store, in order (repeats mean recomputation)."""
        log = self.root / COMPUTED_LOG
        if not log.is_file():
            return []
        return [json.loads(line)["key"] for line in log.read_text().splitlines() if line.strip()]
