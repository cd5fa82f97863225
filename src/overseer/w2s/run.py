"""Run one weak-to-strong experiment end to end, reading top to bottom like a script.

1. Load the dataset and draw, for each seed, weak-train / weak-label / test splits.
2. Get pooled activations of the weak and strong models for every split (cached on disk).
3. Weak model: a head on weak-train ground truth; it labels the weak-label split (soft labels).
4. Strong student: a head on the strong model's weak-label activations and the weak labels only.
5. Strong ceiling: a head on the strong model's weak-train ground truth.
6. Score all three on the test split: accuracy, AUROC, PGR, with bootstrap intervals.
7. Write the run directory (config, versions, metrics, predictions, plot) and index it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from overseer.data import BinaryDataset, load_dataset
from overseer.data._splits import LabeledSplit, UnlabeledSplit, W2SSplits, w2s_splits
from overseer.models import LADDER, ActivationCache, resolve_model
from overseer.results import RunWriter, index_run, is_finished, run_path
from overseer.w2s.config import W2SConfig
from overseer.w2s.heads import TorchHead
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


def _pooling(model: str, requested: str | None) -> str:
    if requested is not None:
        return requested
    if model in LADDER:
        return LADDER[model].pooling
    spec = resolve_model(model)
    if spec.gguf_file:
        return "last"
    from transformers import AutoConfig

    from overseer.models._load import _model_kind

    config = AutoConfig.from_pretrained(spec.source, revision=spec.revision, trust_remote_code=False)
    return "last" if _model_kind(config) == "causal" else "mean"


class _Features:
    """Fetches one model's features for a split, handling compare-pairing datasets."""

    def __init__(self, cache: ActivationCache, model: str, layer: int, pooling: str, pairing: str, max_length: int):
        self.cache, self.model, self.layer, self.pooling = cache, model, layer, pooling
        self.pairing, self.max_length = pairing, max_length

    def __call__(self, split: UnlabeledSplit, bar: tqdm) -> np.ndarray:
        def get(texts: Sequence[str], pairs: Sequence[str] | None) -> np.ndarray:
            return self.cache.features(
                self.model, texts, [self.layer], self.pooling, pairs, self.max_length, progress=bar.update
            )[self.layer]

        if self.pairing == "compare":
            # Score each side separately; the head sees the difference (a Bradley-Terry probe).
            assert split.text_pairs is not None
            return get(split.texts, None) - get(split.text_pairs, None)
        pairs = split.text_pairs if self.pairing == "concat" else None
        return get(split.texts, pairs)


def _fit_head(cfg: W2SConfig, X: np.ndarray, y: np.ndarray, seed: int, student: bool) -> TorchHead:
    head = TorchHead(
        hidden_dim=cfg.head.hidden_dim,
        epochs=cfg.head.epochs,
        lr=cfg.head.lr,
        weight_decay=cfg.head.weight_decay,
        batch_size=cfg.head.batch_size,
        loss=cfg.loss if student else "xent",
        loss_args=dict(cfg.loss_args) if student else None,
        random_state=seed,
    )
    return head.fit(X, y)


def _run_seed(cfg: W2SConfig, dataset: BinaryDataset, seed: int, weak: _Features, strong: _Features) -> pd.DataFrame:
    splits: W2SSplits = w2s_splits(dataset, cfg.n_train, cfg.n_test, seed=seed, n_label=cfg.n_label)
    train, label, test = splits.weak_train, splits.weak_label, splits.test
    sides = 2 if dataset.pairing == "compare" else 1
    total = 2 * sides * (len(train) + len(label) + len(test))
    with tqdm(total=total, desc=f"activations (seed {seed})", unit="text", leave=False) as bar:
        feats = {
            (who, split.name): fetch(split, bar)
            for who, fetch in (("weak", weak), ("strong", strong))
            for split in (train, label, test)
        }

    weak_head = _fit_head(cfg, feats["weak", "weak_train"], train.labels, seed, student=False)
    weak_labels = weak_head.predict_proba(feats["weak", "weak_label"])[:, 1]  # soft labels for the student
    student_head = _fit_head(cfg, feats["strong", "weak_label"], weak_labels, seed, student=True)
    ceiling_head = _fit_head(cfg, feats["strong", "weak_train"], train.labels, seed, student=False)

    test_frame = _predictions(seed, test, {
        "weak": weak_head.predict_proba(feats["weak", "test"])[:, 1],
        "student": student_head.predict_proba(feats["strong", "test"])[:, 1],
        "ceiling": ceiling_head.predict_proba(feats["strong", "test"])[:, 1],
    })
    # Only now, with every model trained, is the student split's ground truth read: to score weak labels.
    label_truth = LabeledSplit(label.name, label.ids, label.texts, label.text_pairs, splits.weak_label_truth_for_metrics())
    label_frame = _predictions(seed, label_truth, {
        "weak": weak_labels,
        "student": student_head.predict_proba(feats["strong", "weak_label"])[:, 1],
        "ceiling": ceiling_head.predict_proba(feats["strong", "weak_label"])[:, 1],
    })
    return pd.concat([test_frame, label_frame], ignore_index=True)


def _predictions(seed: int, split: LabeledSplit, probs: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame({
        "seed": seed,
        "split": split.name,
        "id": list(split.ids),
        "label": split.labels,
        **{f"{role}_prob": probs[role].astype(np.float64) for role in ROLES},
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
    dataset = load_dataset(cfg.dataset, **cfg.dataset_args)
    cache = cache or ActivationCache(device=cfg.device, batch_size=cfg.batch_size)
    weak = _Features(cache, cfg.weak, cfg.weak_layer, _pooling(cfg.weak, cfg.weak_pooling), dataset.pairing, cfg.max_length)
    strong = _Features(cache, cfg.strong, cfg.strong_layer, _pooling(cfg.strong, cfg.strong_pooling), dataset.pairing, cfg.max_length)

    frames = [_run_seed(cfg, dataset, seed, weak, strong) for seed in tqdm(cfg.seeds, desc="seeds", disable=len(cfg.seeds) < 2)]
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
        "loss": cfg.loss,
        "seeds": len(cfg.seeds),
        **{f"{role}_acc": metrics[role]["accuracy"]["value"] for role in ROLES},
        "pgr": metrics["pgr"]["accuracy"]["value"],
    }
    with RunWriter("w2s", identity, out) as writer:
        writer.write_json("resolved_config.json", {**cfg.to_dict(),
                                                   "weak_pooling": weak.pooling, "strong_pooling": strong.pooling})
        predictions.to_parquet(writer.file("predictions.parquet"), index=False)
        fig = plot_accuracies(metrics, title=f"{cfg.dataset}: {cfg.weak} → {cfg.strong} ({cfg.loss})")
        fig.savefig(writer.file("accuracy.png"), dpi=120, bbox_inches="tight")
        writer.write_json("summary.json", summary)
        writer.write_json("metrics.json", metrics)
    created = summary.pop("created")
    index_run(path, "w2s", summary, identity, created)
    return W2SResult(path, metrics, reused=False)
