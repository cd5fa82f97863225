"""Run one weak-to-strong experiment end to end, reading top to bottom like a script.

1. Load the dataset and draw, for each seed, weak-train / weak-label / test splits.
2. Weak model: the learner (default: a probe on cached activations) fits it on weak-train
   ground truth; it labels the weak-label split with soft labels.
3. Strong student: the chosen method trains the strong model from those weak labels only.
4. Strong ceiling: the strong model fitted on weak-train ground truth.
5. Score all three on the test split: accuracy, AUROC, PGR, with bootstrap intervals.
6. Write the run directory (config, versions, metrics, predictions, plot) and index it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from overseer.data import BinaryDataset, load_dataset
from overseer.data._splits import LabeledSplit, W2SSplits, w2s_splits
from overseer.models import ActivationCache, resolve_model
from overseer.results import RunWriter, index_run, is_finished, run_path
from overseer.w2s.config import W2SConfig
from overseer.w2s.learners import Learner, learner_class
from overseer.w2s.methods import StudentContext, make_method
from overseer.w2s.metrics import w2s_metrics
from overseer.w2s.plots import plot_accuracies

ROLES = ("weak", "student", "ceiling")


@dataclass(frozen=True)
class W2SResult:
    """Where a run lives and its headline metrics."""

    path: Path
    metrics: dict[str, Any]
    reused: bool

    def summary_line(self) -> str:
        """Weak, student and ceiling accuracy with 95% intervals, and PGR."""
        parts = []
        for role in ROLES:
            acc = self.metrics[role]["accuracy"]
            parts.append(f"{role} {_fmt(acc['value'])} [{_fmt(acc['ci_low'])}, {_fmt(acc['ci_high'])}]")
        pgr = self.metrics["pgr"]["accuracy"]
        if pgr["value"] is None:
            parts.append(f"PGR undefined: {pgr['reason']}")
        else:
            parts.append(f"PGR {_fmt(pgr['value'])} [{_fmt(pgr['ci_low'])}, {_fmt(pgr['ci_high'])}]")
        return "accuracy: " + "; ".join(parts)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def make_learner(cfg: W2SConfig, pairing: str, cache: ActivationCache, progress: Callable[[int], None] | None) -> Learner:
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


def _run_seed(cfg: W2SConfig, dataset: BinaryDataset, seed: int, learner: Learner) -> pd.DataFrame:
    splits: W2SSplits = w2s_splits(dataset, cfg.n_train, cfg.n_test, seed=seed, n_label=cfg.n_label)
    train, label, test = splits.weak_train, splits.weak_label, splits.test

    weak = learner.fit(cfg.weak, train, train.labels, seed=seed)
    weak_labels = weak.predict_proba(label)  # soft labels: all the student learns from
    method = make_method(cfg.method, **cfg.method_args)
    student = method.train_student(StudentContext(cfg.strong, cfg.weak, label, weak_labels, train, learner, seed))
    ceiling = learner.fit(cfg.strong, train, train.labels, seed=seed)

    test_frame = _predictions(seed, test, {
        "weak": weak.predict_proba(test), "student": student.predict_proba(test), "ceiling": ceiling.predict_proba(test),
    })
    # Only now, with every model trained, is the student split's ground truth read: to score weak labels.
    truth = LabeledSplit(label.name, label.ids, label.texts, label.text_pairs, splits.weak_label_truth_for_metrics())
    label_frame = _predictions(seed, truth, {
        "weak": weak_labels, "student": student.predict_proba(label), "ceiling": ceiling.predict_proba(label),
    })
    return pd.concat([test_frame, label_frame], ignore_index=True)


def _predictions(seed: int, split: LabeledSplit, probs: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame({
        "seed": seed,
        "split": split.name,
        "id": list(split.ids),
        "label": split.labels,
        **{f"{role}_prob": np.asarray(probs[role], dtype=np.float64) for role in ROLES},
    })


def run(cfg: W2SConfig | None = None, out: str | Path | None = None, force: bool = False,
        cache: ActivationCache | None = None) -> W2SResult:
    """Run (or reuse) the weak-to-strong experiment described by ``cfg``.

    Args:
        cfg: the experiment; default: the offline default experiment.
        out: runs directory (default ``runs/`` in the working directory).
        force: recompute even if a finished run with this config exists (activations are still
            reused from the cache).
        cache: activation cache to use (default: the user cache directory).
    """
    cfg = cfg or W2SConfig()
    identity = cfg.identity()
    path = run_path("w2s", identity, out)
    if is_finished(path) and not force:
        return W2SResult(path, json.loads((path / "metrics.json").read_text()), reused=True)

    started = time.perf_counter()
    for model in (cfg.weak, cfg.strong):
        resolve_model(model)  # an unknown name fails now, not after the dataset is loaded
    dataset = load_dataset(cfg.dataset, **cfg.dataset_args)
    cache = cache or ActivationCache(device=cfg.device, batch_size=cfg.batch_size)
    frames = []
    with tqdm(desc="activations", unit="text", leave=False, disable=None) as bar:  # no bar when not a TTY
        learner = make_learner(cfg, dataset.pairing, cache, progress=bar.update)
        for seed in cfg.seeds:
            bar.set_description(f"seed {seed}: activations")
            frames.append(_run_seed(cfg, dataset, seed, learner))
    predictions = pd.concat(frames, ignore_index=True)
    metrics = w2s_metrics(predictions, n_resamples=cfg.n_bootstrap)
    metrics["timing"] = {"seconds": round(time.perf_counter() - started, 2), "activation_cache": dict(cache.stats)}
    metrics["dataset"] = {"name": dataset.name, "fingerprint": dataset.fingerprint(), "size": len(dataset),
                          "pairing": dataset.pairing}

    summary = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": cfg.dataset,
        "weak": cfg.weak,
        "strong": cfg.strong,
        "method": cfg.method,
        "seeds": len(cfg.seeds),
        **{f"{role}_acc": metrics[role]["accuracy"]["value"] for role in ROLES},
        "pgr": metrics["pgr"]["accuracy"]["value"],
    }
    with RunWriter("w2s", identity, out) as writer:
        resolved = {**cfg.to_dict(), "weak_pooling": learner.pooling(cfg.weak), "strong_pooling": learner.pooling(cfg.strong)}
        writer.write_json("resolved_config.json", resolved)
        predictions.to_parquet(writer.file("predictions.parquet"), index=False)
        fig = plot_accuracies(metrics, title=f"{cfg.dataset}: {cfg.weak} → {cfg.strong} ({cfg.method})")
        fig.savefig(writer.file("accuracy.png"), dpi=120, bbox_inches="tight")
        writer.write_json("summary.json", summary)
        writer.write_json("metrics.json", metrics)
    created = summary.pop("created")
    index_run(path, "w2s", summary, identity, created)
    return W2SResult(path, metrics, reused=False)
