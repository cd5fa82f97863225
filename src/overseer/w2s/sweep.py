"""Sweeps over a model ladder: every weak < strong pair, each dataset, method and seed, with job reuse.

A sweep is planned as content-hashed jobs (:mod:`overseer.w2s.jobs`): each weak model's labels
and each ceiling are trained once per (dataset, seed) and shared by every pair that needs them;
students depend on their weak job. Finished jobs live in the runs directory's job store, so a
killed sweep, rerun, loses only the jobs that were in flight. When the jobs are done, each
(pair, dataset, method) becomes an ordinary w2s run directory (seen by ``overseer runs`` and
``overseer w2s report``), and ``<out>/sweep-<name>/`` records the sweep's config and summary.

Jobs run in this process by default; with ``ray`` each job is a Ray task with its own CPU/GPU
request, on a local Ray instance or a running cluster.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from overseer._names import safe_name
from overseer._yaml import read_yaml
from overseer.data import BinaryDataset, load_dataset
from overseer.errors import OverseerError
from overseer.results import DEFAULT_RUNS_DIR, RunWriter, is_main_process, write_json
from overseer.w2s.config import W2SConfig
from overseer.w2s.jobs import Job, JobStore
from overseer.w2s.learners import ProbeLearner
from overseer.w2s.run import (
    compute_job,
    learner_names,
    make_learner,
    regularisation,
    run_texts,
    seed_jobs,
    seed_predictions,
    start,
    write_run,
)
from overseer.w2s.splits import w2s_splits

# W2SConfig fields that a sweep sets per pair; every other W2SConfig field is shared by all runs.
_PER_RUN = ("weak", "strong", "dataset", "dataset_args", "method", "method_args", "seeds")
# Where jobs run, not what they compute: left out of the identity a resumed sweep must match.
_EXECUTION_ONLY = ("name", "task_cpus", "task_gpus", "ray_num_cpus")
_SHARED_EXECUTION_ONLY = ("device", "batch_size")
_DISABLE = {True: False, False: True, None: None}  # tqdm's disable=None: a bar only on a terminal
RUN_DEFAULT_DATASET: str = W2SConfig.__dataclass_fields__["dataset"].default
"""The dataset of ``overseer w2s run`` by default, which a sweep also defaults to."""


@dataclass(frozen=True)
class Entry:
    """A named dataset or method with its keyword arguments."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, item: Any, what: str) -> Entry:
        """``"xent"`` or ``{name: logconf, args: {aux_coef: 0.5}}``."""
        if isinstance(item, Entry):
            return item
        if isinstance(item, str):
            return cls(item)
        if isinstance(item, dict) and set(item) <= {"name", "args"} and isinstance(item.get("name"), str):
            return cls(item["name"], dict(item.get("args") or {}))
        raise OverseerError(f"each of {what} must be a name or {{name: ..., args: {{...}}}}; got {item!r}")

    def label(self) -> str:
        """``name`` or ``name(k=v, ...)``, for tables and messages."""
        args = ", ".join(f"{k}={v}" for k, v in sorted(self.args.items()))
        return f"{self.name}({args})" if args else self.name


@dataclass(frozen=True)
class SweepConfig:
    """A weak-to-strong sweep: a model ladder, datasets, methods and seeds, plus shared settings.

    ``shared`` holds any other :class:`W2SConfig` field (``n_train``, ``learner``, ``head``...);
    in YAML these are written at the top level next to ``ladder``.
    """

    name: str = "sweep"
    """Names the sweep's record ``<out>/sweep-<name>/`` (letters, digits, ``._-``); resuming under it needs the
    same config."""
    ladder: tuple[str, ...] = ("minilm-l6", "smollm2-135m-l8", "smollm2-135m")
    """Models, weakest first; every (weaker, stronger) pair is run."""
    datasets: tuple[Entry, ...] = (Entry(RUN_DEFAULT_DATASET),)
    """Default: the run's default dataset (``W2SConfig().dataset``)."""
    methods: tuple[Entry, ...] = (Entry("xent"),)
    seeds: tuple[int, ...] = (0,)
    learner_args_by_model: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-model learner arguments over the shared ``learner_args`` (e.g. a learning rate per size)."""
    shared: dict[str, Any] = field(default_factory=dict)
    task_cpus: float = 1
    """Ray: CPUs each job asks for."""
    task_gpus: float = 0
    """Ray: GPUs each job asks for (fractions share a GPU)."""
    ray_num_cpus: int | None = None
    """Ray, local instance only: CPUs it may use (default: all)."""

    def __post_init__(self) -> None:
        safe_name(self.name, "sweep name")  # joined to --out: one path component, never a way out of it
        if len(self.ladder) < 2 or len(set(self.ladder)) != len(self.ladder):
            raise OverseerError(f"ladder needs at least two distinct models, weakest first; got {list(self.ladder)}")
        if not self.datasets or not self.methods or not self.seeds:
            raise OverseerError("a sweep needs at least one dataset, one method and one seed")
        bad = sorted(set(self.shared) - _shared_fields())
        if bad:
            raise OverseerError(f"unknown sweep option {bad[0]!r}; allowed: {', '.join(sorted(_sweep_keys()))}")
        stray = sorted(set(self.learner_args_by_model) - set(self.ladder))
        if stray:
            raise OverseerError(
                f"learner_args_by_model names {stray[0]!r}, which is not on the ladder {list(self.ladder)}")
        if self.task_cpus < 0 or self.task_gpus < 0:
            raise OverseerError("task_cpus and task_gpus must be >= 0")
        from overseer.w2s.learners import learner_class

        learner_class(self.shared.get("learner", "probe"))  # loads an optional learner's module (finetune)
        for plan in self.plans():  # every run's config is valid before anything is computed
            del plan

    # --- the plan --------------------------------------------------------------------------
    def pairs(self) -> list[tuple[str, str]]:
        """Every (weak, strong) pair with the weak model strictly below the strong one."""
        return [(w, s) for i, w in enumerate(self.ladder) for s in self.ladder[i + 1:]]

    def learner_args(self, model: str) -> dict[str, Any]:
        """The learner's arguments when it trains ``model``."""
        return {**(self.shared.get("learner_args") or {}), **self.learner_args_by_model.get(model, {})}

    def plans(self) -> list[RunPlan]:
        """One run per (dataset, method, pair), in that order."""
        plans = []
        for ds in self.datasets:
            for method in self.methods:
                for weak, strong in self.pairs():
                    cfg = W2SConfig.from_dict({
                        **self.shared, "weak": weak, "strong": strong, "dataset": ds.name, "dataset_args": ds.args,
                        "method": method.name, "method_args": method.args, "seeds": list(self.seeds),
                    })
                    identity = cfg.identity()
                    overrides = {m: self.learner_args(m) for m in (weak, strong) if m in self.learner_args_by_model}
                    if overrides:  # only then: a plain `w2s run` of the same pair keeps the same directory
                        identity["learner_args_by_model"] = overrides
                    plans.append(RunPlan(cfg, identity, self.learner_args(weak), self.learner_args(strong)))
        return plans

    # --- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The YAML-shaped dict (shared fields at the top level)."""
        return {
            "name": self.name, "ladder": list(self.ladder),
            "datasets": [dataclasses.asdict(d) for d in self.datasets],
            "methods": [dataclasses.asdict(m) for m in self.methods], "seeds": list(self.seeds),
            "learner_args_by_model": self.learner_args_by_model, "task_cpus": self.task_cpus,
            "task_gpus": self.task_gpus, "ray_num_cpus": self.ray_num_cpus, **self.shared,
        }

    def identity(self) -> dict[str, Any]:
        """What a resumed sweep must match: everything but where and how its jobs run."""
        d = {k: v for k, v in self.to_dict().items() if k not in _EXECUTION_ONLY and k not in _SHARED_EXECUTION_ONLY}
        return json.loads(json.dumps(d, default=str))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepConfig:
        """Build from a YAML mapping; unknown keys are refused with the allowed ones."""
        if not isinstance(data, dict):
            raise OverseerError(f"sweep config must be a mapping of options; got {type(data).__name__}")
        own = {f.name for f in dataclasses.fields(cls)} - {"shared"}
        kwargs: dict[str, Any] = {k: v for k, v in data.items() if k in own}
        shared = {k: v for k, v in data.items() if k not in own}
        if isinstance(kwargs.get("name"), int) and not isinstance(kwargs["name"], bool):
            kwargs["name"] = str(kwargs["name"])  # `name: 2024` in YAML
        if "ladder" in kwargs:
            kwargs["ladder"] = tuple(str(m) for m in kwargs["ladder"])
        for key in ("datasets", "methods"):
            if key in kwargs:
                items = kwargs[key] if isinstance(kwargs[key], list | tuple) else [kwargs[key]]
                kwargs[key] = tuple(Entry.parse(item, key) for item in items)
        if "seeds" in kwargs:
            seeds = kwargs["seeds"]
            kwargs["seeds"] = tuple(seeds) if isinstance(seeds, list | tuple) else (seeds,)
        kwargs["learner_args_by_model"] = dict(kwargs.get("learner_args_by_model") or {})
        return cls(**kwargs, shared=shared)

    @classmethod
    def from_yaml(cls, path: str | Path) -> SweepConfig:
        """Load a sweep YAML file."""
        return cls.from_dict(read_yaml(path, "sweep config"))


def _shared_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(W2SConfig)} - set(_PER_RUN)


def _sweep_keys() -> set[str]:
    return ({f.name for f in dataclasses.fields(SweepConfig)} - {"shared"}) | _shared_fields()


@dataclass(frozen=True)
class RunPlan:
    """One run of a sweep: its config, run-directory identity and each role's learner args."""

    cfg: W2SConfig
    identity: dict[str, Any]
    weak_learner_args: dict[str, Any]
    strong_learner_args: dict[str, Any]


@dataclass(frozen=True)
class SweepResult:
    """What a sweep produced and what it could not."""

    path: Path
    """The sweep's record directory (``sweep.json``, ``summary.json``)."""
    runs: list[Path]
    failures: list[dict[str, str]]
    """One entry per failed or skipped job: key, job, error."""
    computed: list[str]
    loaded: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        """True when every job and run finished."""
        return not self.failures


# --- running -----------------------------------------------------------------------------------
def sweep(cfg: SweepConfig, out: str | Path | None = None, ray: str | None = None,
          progress: bool | None = None) -> SweepResult:
    """Run (or resume) a sweep into the runs directory ``out``.

    Args:
        cfg: the sweep.
        out: runs directory (default ``runs/``); jobs go to ``<out>/.jobs``.
        ray: ``None`` runs jobs in this process; ``"local"`` starts a local Ray instance; any
            other value is the address of a running Ray cluster (``ray://host:10001``, ``auto``).
        progress: show a progress bar (default: only on a terminal).
    """
    started = time.perf_counter()
    out = Path(out or DEFAULT_RUNS_DIR)
    record = out / f"sweep-{safe_name(cfg.name, 'sweep name')}"
    from overseer.data import check_dataset
    from overseer.models import check_device, check_local_models
    from overseer.results import check_runs_dir

    # Everything that can refuse the sweep (names, paths, models, datasets and their sizes, every
    # run's config) is checked before anything is written: a refused sweep leaves no record, so its
    # corrected config may take the same name.
    check_device(cfg.shared.get("device"))
    for entry in cfg.datasets:
        check_dataset(entry.name, entry.args)
    check_local_models(cfg.ladder, bool(cfg.shared.get("trust_remote_code", False)))  # before any training
    check_runs_dir(out)
    if ray is not None:
        import_ray()  # a missing optional package is refused before anything is written
    datasets = {d.name: load_dataset(d.name, **d.args) for d in cfg.datasets}

    jobs: dict[str, Job] = {}
    run_jobs: list[tuple[RunPlan, list[tuple[str, ...]]]] = []
    split_checked: set[tuple[str, int]] = set()
    for plan in cfg.plans():
        dataset = datasets[plan.cfg.dataset]
        fingerprint = dataset.fingerprint()
        per_seed = []
        for seed in cfg.seeds:
            if (plan.cfg.dataset, seed) not in split_checked:  # a dataset too small for the splits fails now
                w2s_splits(dataset, plan.cfg.n_train, plan.cfg.n_test, seed=seed, n_label=plan.cfg.n_label)
                split_checked.add((plan.cfg.dataset, seed))
            seed_set = seed_jobs(plan.cfg, seed, fingerprint, plan.weak_learner_args, plan.strong_learner_args)
            for job in seed_set:
                jobs.setdefault(job.key, job)
            per_seed.append(tuple(j.key for j in seed_set))
        run_jobs.append((plan, per_seed))

    _claim(record, cfg)
    store = JobStore(out)
    loaded = [k for k in jobs if store.has(k)]
    pending = [j for k, j in jobs.items() if k not in loaded]
    # Weak labels before the students and baselines that need them.
    pending.sort(key=lambda j: (j.weak_key is not None, j.model or ""))
    failures: dict[str, dict[str, str]] = {}
    with tqdm(total=len(pending), desc=f"sweep {cfg.name}", unit="job", disable=_DISABLE[progress]) as bar:
        runner = _run_local if ray is None else _run_ray
        runner(cfg, pending, datasets, store, failures, bar.update, ray)
    computed = [j.key for j in pending if j.key not in failures]

    runs = []
    for plan, per_seed in run_jobs:
        writer = start(plan.cfg, plan.identity, out)
        if writer.existing:
            runs.append(writer.path)
            continue
        missing = [k for keys in per_seed for k in keys if not store.has(k)]
        if missing:
            continue  # its failed jobs are already reported
        try:
            runs.append(_write_run(writer, plan, per_seed, datasets[plan.cfg.dataset], store, cfg.name))
        except Exception as exc:  # one broken run must not hide the others
            name = writer.path.name
            failures[f"run:{name}"] = {"key": name, "job": f"run {_label(plan.cfg)}", "error": _error(exc)}

    result = SweepResult(record, runs, list(failures.values()), computed, loaded,
                         round(time.perf_counter() - started, 2))
    if not is_main_process():  # rank 0 of a multi-process job writes the record
        return result
    write_json(record / "summary.json", {
        "name": cfg.name, "status": "complete" if result.ok else "failed", "seconds": result.seconds,
        "jobs": {"total": len(jobs), "computed": len(computed), "reused": len(loaded), "failed": len(failures)},
        "runs": [p.name for p in runs], "expected_runs": len(run_jobs), "failures": result.failures,
    })
    return result


def _claim(record: Path, cfg: SweepConfig) -> None:
    """Record the sweep's config, or refuse to resume it under a config that differs."""
    path = record / "sweep.json"
    if path.is_file():
        before = json.loads(path.read_text())["config"]
        now = cfg.identity()
        if before != now:
            changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
            raise OverseerError(
                f"sweep {cfg.name!r} in {record} was started with a different config (changed: {', '.join(changed)}); "
                "rerun it with its original config, give this one a new `name:` or --out, or delete "
                f"{record} to restart under this name (finished jobs are reused either way)"
            )
        return
    if not is_main_process():
        return
    record.mkdir(parents=True, exist_ok=True)
    write_json(path, {"config": cfg.identity(), "full_config": cfg.to_dict()})


def _label(cfg: W2SConfig) -> str:
    return f"{cfg.weak} -> {cfg.strong} on {cfg.dataset} ({cfg.method})"


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _record_failure(failures: dict[str, dict[str, str]], job: Job, error: str) -> None:
    failures[job.key] = {"key": job.key, "job": job.describe(), "error": error}


def _job_learner(job: Job, dataset: BinaryDataset, cache: Any, rows: dict[Any, Any] | None = None) -> Any:
    """A learner set up for ``job``'s model, with that model's learner arguments (sharing ``rows``, when given)."""
    learner = make_learner(dataclasses.replace(job.cfg, learner_args=job.learner_args), dataset.pairing, cache, None)
    if rows is not None and isinstance(learner, ProbeLearner):
        learner.share_rows(rows)
    return learner


def _prefetch(job: Job, dataset: BinaryDataset, learner: Any, done: set[Any] | None = None) -> None:
    """Embed, once, every text the plain run of ``job``'s pair would: the union of its seeds' splits.

    The union is the same for every job on a dataset with the same sizes and seeds, so a sweep's
    jobs for one model embed each text once (the rest are lookups in the shared rows), and it is
    the activation-cache entry ``overseer w2s run`` of any of its pairs reads back.
    """
    name = learner_names(job.cfg)["weak" if job.kind == "weak" else "strong"]
    if name is None or not isinstance(learner, ProbeLearner):
        return
    c = job.cfg
    key = (c.dataset, json.dumps(c.dataset_args, sort_keys=True, default=str), c.n_train, c.n_label, c.n_test,
           tuple(c.seeds), learner.view(name))
    if done is not None and key in done:
        return
    learner.prefetch(name, run_texts(c, dataset))
    if done is not None:
        done.add(key)


def _run_local(cfg: SweepConfig, pending: list[Job], datasets: dict[str, BinaryDataset], store: JobStore,
               failures: dict[str, dict[str, str]], advance: Callable[[int], None], address: str | None) -> None:
    """Run jobs one after another in this process, sharing one activation cache (and loaded models)."""
    from overseer.models import ActivationCache

    shared = cfg.shared
    cache = ActivationCache(device=shared.get("device"), batch_size=shared.get("batch_size", 32))
    rows: dict[Any, Any] = {}  # embedded rows, shared by every job's learner
    prefetched: set[Any] = set()
    for job in pending:
        if job.weak_key in failures:
            _record_failure(failures, job, f"skipped: its weak job {job.weak_key} failed")
        else:
            try:
                weak_labels = store.load(job.weak_key)["weak_label"] if job.weak_key else None
                dataset = datasets[job.cfg.dataset]
                learner = _job_learner(job, dataset, cache, rows)
                if not store.has(job.key):  # (finished by another process meanwhile: nothing to embed)
                    _prefetch(job, dataset, learner, prefetched)
                # Another process computing this job (a second sweep of the same ladder) is waited for, then loaded.
                store.load_or_compute(job, partial(compute_job, job, dataset, learner, weak_labels))
            except Exception as exc:  # recorded and reported; the other jobs go on
                _record_failure(failures, job, _error(exc))
                tqdm.write(f"job failed: {job.describe()}: {_error(exc)}")
        advance(1)


def _ray_job(job: Job, dataset: BinaryDataset, weak_outputs: dict[str, np.ndarray] | None, cache_root: str | None,
             device: str | None, batch_size: int) -> tuple[dict[str, np.ndarray], float]:
    """Body of one Ray task: compute a job and hand its outputs back to the driver, which stores them."""
    from overseer.models import ActivationCache

    cache = ActivationCache(root=cache_root, device=device, batch_size=batch_size)
    t0 = time.perf_counter()
    weak_labels = weak_outputs["weak_label"] if weak_outputs is not None else None
    learner = _job_learner(job, dataset, cache)
    _prefetch(job, dataset, learner)  # the union entry: computed by the first task of a model, read by the rest
    outputs = compute_job(job, dataset, learner, weak_labels)
    return outputs, time.perf_counter() - t0


def import_ray() -> Any:
    """Ray, imported only when a sweep asks for it."""
    try:
        import ray
    except ImportError as exc:
        raise OverseerError("--ray needs the optional package 'ray', which is not installed: "
                            'pip install -e ".[ray]" (or run without --ray)') from exc
    return ray


def _run_ray(cfg: SweepConfig, pending: list[Job], datasets: dict[str, BinaryDataset], store: JobStore,
             failures: dict[str, dict[str, str]], advance: Callable[[int], None], address: str | None) -> None:
    """Run each job as a Ray task; students take their weak task's result as an argument."""
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        if address in (None, "local"):
            ray.init(num_cpus=cfg.ray_num_cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        task = ray.remote(_ray_job)
        local = address in (None, "local")
        # A local instance shares this machine's activation cache; cluster nodes use their own.
        cache_root = str(_activation_root()) if local else None
        shared = cfg.shared
        refs = {name: ray.put(ds) for name, ds in datasets.items()}
        futures: dict[Any, tuple[Job, Any]] = {}
        by_key: dict[str, Any] = {}
        for job in pending:  # weak and ceiling jobs come first, so a student's weak ref already exists
            if job.weak_key is None:
                weak_in = None
            elif job.weak_key in by_key:
                weak_in = by_key[job.weak_key]  # Ray runs the student after its weak task
            else:
                weak_in = store.load(job.weak_key)
            # Two results: the outputs (what a student's task receives) and the seconds it took.
            outputs_ref, seconds_ref = task.options(
                num_cpus=cfg.task_cpus, num_gpus=cfg.task_gpus, num_returns=2, name=job.key,
            ).remote(job, refs[job.cfg.dataset], weak_in, cache_root, shared.get("device"),
                     shared.get("batch_size", 32))
            futures[outputs_ref] = (job, seconds_ref)
            by_key[job.key] = outputs_ref
        waiting = list(futures)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            job, seconds_ref = futures[done[0]]
            try:
                outputs, seconds = ray.get([done[0], seconds_ref])
                store.save_once(job, outputs, seconds)  # under the lock a local sweep computes it under
            except Exception as exc:
                cause = getattr(exc, "cause", None) or exc
                _record_failure(failures, job, _error(cause))
            advance(1)
        for job in pending:  # a student whose weak task failed failed because of it; say so
            if job.key in failures and job.weak_key in failures:
                _record_failure(failures, job, f"skipped: its weak job {job.weak_key} failed")
    finally:
        if started_here:
            ray.shutdown()


def _activation_root() -> Path:
    from overseer.models import ActivationCache

    return ActivationCache().root.resolve()


def _write_run(writer: RunWriter, plan: RunPlan, per_seed: list[tuple[str, ...]], dataset: BinaryDataset,
               store: JobStore, name: str) -> Path:
    """Assemble a finished (pair, dataset, method) from its jobs into a normal run directory."""
    frames, seconds = [], 0.0
    outputs_by_seed = {}
    for seed, keys in zip(plan.cfg.seeds, per_seed, strict=True):
        outputs = {key.split("-", 1)[0]: store.load(key) for key in keys}  # keys are <kind>-<hash>
        outputs_by_seed[seed] = outputs
        frames.append(seed_predictions(plan.cfg, dataset, seed, outputs))
        for key in keys:
            seconds += store.seconds(key)
    timing = {"seconds": round(seconds, 2), "sweep": name, "jobs": [k for keys in per_seed for k in keys],
              "pid": os.getpid()}
    return write_run(writer, plan.cfg, dataset, pd.concat(frames, ignore_index=True), timing,
                     regularisation(plan.cfg, outputs_by_seed)).path
