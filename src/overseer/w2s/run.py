"""Run one weak-to-strong experiment end to end, reading top to bottom like a script.

1. Load the dataset and draw, for each seed, weak-train / weak-label / test splits.
2. Weak job: the learner (default: a probe on cached activations) fits the weak model on
   weak-train ground truth; it labels the weak-label split with soft labels.
3. Student job: the chosen method trains the strong model from those weak labels only.
4. Ceiling job: the strong model fitted on weak-train ground truth.
   Each job is content-hashed and kept in the runs directory's job store (``overseer.w2s.jobs``),
   so any run or sweep that needs a finished job loads it instead of training it again.
5. Score all three on the test split: accuracy, AUROC, PGR, with bootstrap intervals.
6. Publish the run directory (config, versions, metrics, predictions, plot) through the results
   layer's run lifecycle (:func:`overseer.results.start_run`), which also finds a finished run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from overseer._checks import check_w2s_run
from overseer._progress import progress as show_progress
from overseer.data import BinaryDataset, load_dataset
from overseer.models import ActivationCache
from overseer.models._load import check_model
from overseer.results import RunResult, RunWriter, start_run, summary_formatter
from overseer.w2s.config import W2SConfig
from overseer.w2s.jobs import Job, JobStore
from overseer.w2s.learners import Learner, learner_class
from overseer.w2s.methods import StudentContext, make_method
from overseer.w2s.metrics import w2s_metrics
from overseer.w2s.plots import plot_accuracies
from overseer.w2s.splits import LabeledSplit, W2SSplits, w2s_splits

ROLES = ("weak", "student", "ceiling")


W2SResult = RunResult
"""What :func:`run` returns: the results layer's one result type (``metrics`` is the metrics.json section)."""


@summary_formatter("w2s")
def summary_line(result: RunResult) -> str:
    """Weak, student and ceiling accuracy with 95% intervals, and PGR."""
    parts = []
    for role in ROLES:
        acc = result.metrics[role]["accuracy"]
        parts.append(f"{role} {_fmt(acc['value'])} [{_fmt(acc['ci_low'])}, {_fmt(acc['ci_high'])}]")
    pgr = result.metrics["pgr"]["accuracy"]
    if pgr["value"] is None:
        parts.append(f"PGR undefined: {pgr['reason']}")
    else:
        parts.append(f"PGR {_fmt(pgr['value'])} [{_fmt(pgr['ci_low'])}, {_fmt(pgr['ci_high'])}]")
    return "accuracy: " + "; ".join(parts)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def make_learner(cfg: W2SConfig, pairing: str, cache: ActivationCache,
                 progress: Callable[[int], None] | None) -> Learner:
    """The learner ``cfg`` asks for, set up with its layers, poolings and head settings."""
    cls = learner_class(cfg.learner)
    return cls(
        cache=cache,
        layers={cfg.weak: cfg.weak_layer, cfg.strong: cfg.strong_layer},
        poolings={cfg.weak: cfg.weak_pooling, cfg.strong: cfg.strong_pooling},
        pairing=pairing,
        max_length=cfg.max_length,
        head=dataclasses.asdict(cfg.head),
        progress=progress,
        **cfg.learner_args,
    )


def seed_jobs(cfg: W2SConfig, seed: int, dataset_fingerprint: str, weak_args: dict[str, Any] | None = None,
              strong_args: dict[str, Any] | None = None) -> tuple[Job, Job, Job]:
    """The weak, ceiling and student jobs of one seed (learner args default to ``cfg.learner_args``)."""
    weak_args = cfg.learner_args if weak_args is None else weak_args
    strong_args = cfg.learner_args if strong_args is None else strong_args
    weak = Job("weak", cfg, seed, dataset_fingerprint, weak_args)
    ceiling = Job("ceiling", cfg, seed, dataset_fingerprint, strong_args)
    student = Job("student", cfg, seed, dataset_fingerprint, strong_args, weak_key=weak.key)
    return weak, ceiling, student


def compute_job(job: Job, dataset: BinaryDataset, learner: Learner, weak_labels: np.ndarray | None = None
                ) -> dict[str, np.ndarray]:
    """Train what ``job`` asks for; return its P(class 1) on the student split and the test split.

    Weak and ceiling models fit weak-train ground truth. The student sees its split only as an
    :class:`UnlabeledSplit` with ``weak_labels`` (the weak job's ``weak_label`` output): never its truth.
    """
    cfg = job.cfg
    splits: W2SSplits = w2s_splits(dataset, cfg.n_train, cfg.n_test, seed=job.seed, n_label=cfg.n_label)
    train, label, test = splits.weak_train, splits.weak_label, splits.test
    if job.kind == "student":
        if weak_labels is None:
            raise ValueError("a student job needs its weak job's labels")
        method = make_method(cfg.method, **cfg.method_args)
        model = method.train_student(StudentContext(cfg.strong, cfg.weak, label, weak_labels, train, learner, job.seed))
    else:
        model = learner.fit(job.model, train, train.labels, seed=job.seed)
    return {"weak_label": model.predict_proba(label), "test": model.predict_proba(test)}


def _outputs(store: JobStore, job: Job, force: bool, compute: Callable[[], dict[str, np.ndarray]],
             counts: dict[str, int], finished: list[tuple[Job, dict[str, np.ndarray], float]]) -> dict[str, np.ndarray]:
    """Load a finished job from the store, or compute it and queue it for the store."""
    if not force and store.has(job.key):
        counts["loaded"] += 1
        return store.load(job.key)
    started = time.perf_counter()
    outputs = compute()
    finished.append((job, outputs, time.perf_counter() - started))
    counts["computed"] += 1
    return outputs


def _run_seed(cfg: W2SConfig, dataset: BinaryDataset, seed: int, learner: Learner, store: JobStore, force: bool,
              counts: dict[str, int], finished: list[tuple[Job, dict[str, np.ndarray], float]]) -> pd.DataFrame:
    weak, ceiling, student = seed_jobs(cfg, seed, dataset.fingerprint())
    weak_out = _outputs(store, weak, force, lambda: compute_job(weak, dataset, learner), counts, finished)
    # The weak labels are all the student learns from.
    student_out = _outputs(store, student, force,
                           lambda: compute_job(student, dataset, learner, weak_out["weak_label"]), counts, finished)
    ceiling_out = _outputs(store, ceiling, force, lambda: compute_job(ceiling, dataset, learner), counts, finished)
    return seed_predictions(cfg, dataset, seed, {"weak": weak_out, "student": student_out, "ceiling": ceiling_out})


def seed_predictions(cfg: W2SConfig, dataset: BinaryDataset, seed: int,
                     outputs: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """The prediction rows of one seed from its three jobs' outputs (keyed by role)."""
    splits: W2SSplits = w2s_splits(dataset, cfg.n_train, cfg.n_test, seed=seed, n_label=cfg.n_label)
    test_frame = _predictions(seed, splits.test, {role: outputs[role]["test"] for role in ROLES})
    # Only now, with every model trained, is the student split's ground truth read: to score weak labels.
    label = splits.weak_label
    truth = LabeledSplit(label.name, label.ids, label.texts, label.text_pairs, splits.weak_label_truth_for_metrics())
    label_frame = _predictions(seed, truth, {role: outputs[role]["weak_label"] for role in ROLES})
    return pd.concat([test_frame, label_frame], ignore_index=True)


def _predictions(seed: int, split: LabeledSplit, probs: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame({
        "seed": seed,
        "split": split.name,
        "id": list(split.ids),
        "label": split.labels,
        **{f"{role}_prob": np.asarray(probs[role], dtype=np.float64) for role in ROLES},
    })


def start(cfg: W2SConfig, identity: dict[str, Any], out: str | Path | None, force: bool = False) -> RunWriter:
    """Start the run of ``identity`` (see :func:`overseer.results.start_run`); shared by runs and sweeps."""
    return start_run("w2s", identity, out, force=force, resolved={**cfg.to_dict(), **identity})


def texts_to_embed(cfg: W2SConfig, dataset: BinaryDataset, store: JobStore, force: bool = False) -> int | None:
    """How many texts the probe learner will pass through feature extraction in this run (None: not a probe run).

    Counts, for every seed, the splits that the jobs still to compute need embedded (weak model:
    weak-train, weak-label and test; strong model: the same for the ceiling, weak-label and test for
    the student), each once per model, as the learner does; cached activations count too (they are
    read at once). A method that embeds more (other models, more splits) raises the total as it goes.
    """
    if cfg.learner != "probe":
        return None
    seen: dict[str, set[tuple[str, str | None]]] = {}
    sides = 2 if dataset.pairing == "compare" else 1
    total = 0
    for seed in cfg.seeds:
        jobs = [job for job in seed_jobs(cfg, seed, dataset.fingerprint()) if force or not store.has(job.key)]
        if not jobs:
            continue
        splits = w2s_splits(dataset, cfg.n_train, cfg.n_test, seed=seed, n_label=cfg.n_label)
        for job in jobs:
            model = cfg.weak if job.kind == "weak" else cfg.strong
            needed = [splits.weak_label, splits.test] + ([] if job.kind == "student" else [splits.weak_train])
            rows = seen.setdefault(model, set())
            for split in needed:
                keys = list(zip(split.texts, split.text_pairs or [None] * len(split.texts), strict=True))
                if keys and not all(key in rows for key in keys):
                    rows.update(keys)
                    total += len(keys) * sides
    return total


def run(cfg: W2SConfig | None = None, out: str | Path | None = None, force: bool = False,
        cache: ActivationCache | None = None, progress: bool = True) -> RunResult:
    """Run (or reuse) the weak-to-strong experiment described by ``cfg``.

    Names and paths (dataset, data path, models, runs directory) are checked first, before
    anything is loaded or written (:func:`overseer._checks.check_w2s_run`).

    Args:
        cfg: the experiment; default: the offline default experiment.
        out: runs directory (default ``runs/`` in the working directory).
        force: recompute even if a finished run with this config exists (activations are still
            reused from the cache).
        cache: activation cache to use (default: the user cache directory).
        progress: show the feature extraction's progress (texts done of the run's total, rate,
            ETA): a bar on a terminal, a line every 30 s otherwise (see :mod:`overseer._progress`).
    """
    cfg = cfg or W2SConfig()
    check_w2s_run(cfg, out)
    writer = start(cfg, cfg.identity(), out, force)
    if writer.existing:
        return writer.existing

    started = time.perf_counter()
    for model in (cfg.weak, cfg.strong):
        check_model(model, cfg.device)  # an unknown name or device fails now, not after the dataset is loaded
    dataset = load_dataset(cfg.dataset, **cfg.dataset_args)
    cache = cache or ActivationCache(device=cfg.device, batch_size=cfg.batch_size,
                                     trust_remote_code=cfg.trust_remote_code)
    store = JobStore(out)
    counts = {"computed": 0, "loaded": 0}
    finished: list[tuple[Job, dict[str, np.ndarray], float]] = []
    frames = []
    total = texts_to_embed(cfg, dataset, store, force)
    with show_progress(total, "activations", "texts", enabled=progress) as bar:
        learner = make_learner(cfg, dataset.pairing, cache, progress=bar.update)
        for seed in cfg.seeds:
            bar.set_description(f"seed {seed}: activations")
            frames.append(_run_seed(cfg, dataset, seed, learner, store, force, counts, finished))
    timing = {"seconds": round(time.perf_counter() - started, 2), "activation_cache": dict(cache.stats),
              "jobs": counts}
    result = write_run(writer, cfg, dataset, pd.concat(frames, ignore_index=True), timing)
    # A single run is one unit: its jobs join the store only once it is published, so an
    # interrupted run leaves nothing behind (a sweep, by contrast, stores each job as it ends).
    for job, outputs, seconds in finished:
        store.save(job, outputs, seconds)
    return result


def write_run(writer: RunWriter, cfg: W2SConfig, dataset: BinaryDataset, predictions: pd.DataFrame,
              timing: dict[str, Any]) -> RunResult:
    """Score ``predictions`` and publish them through ``writer`` (from :func:`start`); shared by runs and sweeps."""
    import matplotlib.pyplot as plt  # after overseer.w2s.plots chose the Agg backend

    scores = w2s_metrics(predictions, n_resamples=cfg.n_bootstrap)
    metrics = scores.pop("metrics")
    headline = {
        "dataset": cfg.dataset,
        "weak": cfg.weak,
        "strong": cfg.strong,
        "method": cfg.method,
        "seeds": len(cfg.seeds),
        **{f"{role}_acc": metrics[role]["accuracy"]["value"] for role in ROLES},
        "pgr": metrics["pgr"]["accuracy"]["value"],
    }
    dataset_info = {"name": dataset.name, "fingerprint": dataset.fingerprint(), "size": len(dataset),
                    "pairing": dataset.pairing, **({"meta": dict(dataset.meta)} if dataset.meta else {})}
    with writer:
        predictions.to_parquet(writer.file("predictions.parquet"), index=False)
        from overseer.results.plots import model_label, save_figure

        fig = plot_accuracies(metrics, title=f"{cfg.dataset}: {model_label(cfg.weak)} → {model_label(cfg.strong)} "
                              f"({cfg.method})", n_test=scores["n_test"], n_seeds=scores["n_seeds"])
        save_figure(fig, writer.file("accuracy.png").parent, "accuracy")  # accuracy.png (300 dpi) and accuracy.pdf
        plt.close(fig)
        writer.finish(metrics, timings=timing, summary=headline, dataset=dataset_info, **scores)
    return writer.result
