"""Weak-to-strong metrics from a predictions table: accuracy, AUROC and PGR with 95% intervals."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from overseer.results import accuracy, auroc, estimates, pgr

ROLES = ("weak", "student", "baseline", "ceiling")
"""``baseline`` is the noise-matched student (:mod:`overseer.w2s.synthetic`); runs written before it existed lack it."""
METRICS = {"accuracy": accuracy, "auroc": auroc}


def _point(frame: pd.DataFrame, role: str, metric: str) -> float:
    """Mean over seeds of the per-seed metric (seeds weigh equally)."""
    fn = METRICS[metric]
    return float(np.mean([fn(g["label"].to_numpy(), g[f"{role}_prob"].to_numpy()) for _, g in frame.groupby("seed")]))


def w2s_metrics(predictions: pd.DataFrame, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Metrics of a run from its predictions (rows of split ``test`` and ``weak_label``).

    Intervals are 95% percentile-bootstrap intervals over test examples; with several seeds the
    bootstrap first resamples seeds, then examples within them. PGR is computed on the same
    resamples, so its interval reflects the correlation between the three accuracies.

    Returns:
        ``metrics`` (``weak``, ``student``, ``baseline``, ``ceiling``: ``accuracy`` and ``auroc``
        estimates; ``pgr`` and ``baseline_pgr`` on both; ``agreement`` between student and weak
        labels), and beside it
        ``per_seed`` accuracies, ``n_test`` (per seed) and ``n_seeds``.
    """
    test = predictions[predictions["split"] == "test"].reset_index(drop=True)
    labels = test["label"].to_numpy()
    roles = [role for role in ROLES if f"{role}_prob" in test]
    probs = {role: test[f"{role}_prob"].to_numpy() for role in roles}
    n_seeds = test["seed"].nunique()
    # PGR of the student, and of the noise-matched baseline: the same formula with it as the student.
    gains = {"pgr": "student", "baseline_pgr": "baseline"} if "baseline" in roles else {"pgr": "student"}

    def statistic(idx: np.ndarray) -> dict[str, float]:
        values = {f"{role}/{m}": METRICS[m](labels[idx], probs[role][idx]) for m in METRICS for role in roles}
        for m in METRICS:
            weak, ceiling = values[f"weak/{m}"], values[f"ceiling/{m}"]
            gap = ceiling - weak
            for name, role in gains.items():
                values[f"{name}/{m}"] = (values[f"{role}/{m}"] - weak) / gap if gap > 0 else float("nan")
        return values

    pooled = {f"{role}/{m}": _point(test, role, m) for m in METRICS for role in roles}
    point: dict[str, float | None] = dict(pooled)
    reasons: dict[str, str | None] = {}
    for m in METRICS:
        for name, role in gains.items():
            point[f"{name}/{m}"], reasons[f"{name}/{m}"] = pgr(pooled[f"weak/{m}"], pooled[f"{role}/{m}"],
                                                               pooled[f"ceiling/{m}"])
    found = estimates(statistic, len(test), groups=test["seed"].to_numpy() if n_seeds > 1 else None,
                      n_resamples=n_resamples, seed=seed, point=point)

    metrics: dict[str, Any] = {group: {} for group in (*roles, *gains)}
    for name, est in found.items():
        group, metric = name.split("/")
        if group in gains:
            est = dataclasses.replace(est, reason=reasons[name])
        metrics[group][metric] = est.as_dict()

    label_rows = predictions[predictions["split"] == "weak_label"]
    weak_hard = (label_rows["weak_prob"] >= 0.5).astype(int)
    metrics["agreement"] = {
        "student_vs_weak_test": float(np.mean((probs["student"] >= 0.5) == (probs["weak"] >= 0.5))),
        "student_vs_weak_train": float(np.mean((label_rows["student_prob"] >= 0.5).astype(int) == weak_hard)),
        "weak_label_accuracy": float(np.mean(weak_hard == label_rows["label"])),
    }
    per_seed = {
        int(s): {role: accuracy(g["label"].to_numpy(), g[f"{role}_prob"].to_numpy()) for role in roles}
        for s, g in test.groupby("seed")
    }
    return {"metrics": metrics, "per_seed": per_seed, "n_test": int(len(test) // max(1, n_seeds)),
            "n_seeds": int(n_seeds)}
