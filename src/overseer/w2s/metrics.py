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


def _point(frame: pd.DataFrame, column: str, metric: str) -> float:
    """Mean over seeds of the per-seed metric of the probabilities in ``column`` (seeds weigh equally)."""
    fn = METRICS[metric]
    return float(np.mean([fn(g["label"].to_numpy(), g[column].to_numpy()) for _, g in frame.groupby("seed")]))


def baseline_columns(frame: pd.DataFrame) -> list[str]:
    """The noise-matched baseline's probability columns, one per flip draw (``baseline_prob`` is draw 0)."""
    if "baseline_prob" not in frame:
        return []
    later = sorted((c for c in frame.columns if c.startswith("baseline_prob_draw")),
                   key=lambda c: int(c.removeprefix("baseline_prob_draw")))
    return ["baseline_prob", *later]


def _spread(values: list[float]) -> dict[str, Any]:
    """Mean, sample standard deviation, min and max of per-draw values (NaN values left out)."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return {"mean": None, "sd": None, "min": None, "max": None, "values": values}
    return {"mean": float(np.mean(finite)), "sd": float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0,
            "min": float(np.min(finite)), "max": float(np.max(finite)), "values": values}


def w2s_metrics(predictions: pd.DataFrame, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Metrics of a run from its predictions (rows of split ``test`` and ``weak_label``).

    Intervals are 95% percentile-bootstrap intervals over test examples; with several seeds the
    bootstrap first resamples seeds, then examples within them. PGR is computed on the same
    resamples, so its interval reflects the correlation between the three accuracies.

    The noise-matched baseline is trained on several independent flip draws per seed: its value
    (and ``baseline_pgr``'s) is the mean over draws, its interval the bootstrap of that mean over
    test examples and seeds, and ``draws`` beside them gives each draw's value (pooled over
    seeds) with their mean, standard deviation, min and max: the spread the flips alone cause.

    Returns:
        ``metrics`` (``weak``, ``student``, ``baseline``, ``ceiling``: ``accuracy`` and ``auroc``
        estimates; ``pgr`` and ``baseline_pgr`` on both; ``agreement`` between student and weak
        labels), and beside it
        ``per_seed`` accuracies (the baseline's: mean over draws), ``n_test`` (per seed) and ``n_seeds``.
    """
    test = predictions[predictions["split"] == "test"].reset_index(drop=True)
    labels = test["label"].to_numpy()
    roles = [role for role in ROLES if f"{role}_prob" in test]
    columns = {role: [f"{role}_prob"] for role in roles}
    if "baseline" in roles:
        columns["baseline"] = baseline_columns(test)
    probs = {role: [test[c].to_numpy() for c in cols] for role, cols in columns.items()}
    n_seeds = test["seed"].nunique()
    # PGR of the student, and of the noise-matched baseline: the same formula with it as the student.
    gains = {"pgr": "student", "baseline_pgr": "baseline"} if "baseline" in roles else {"pgr": "student"}

    def statistic(idx: np.ndarray) -> dict[str, float]:
        values = {f"{role}/{m}": float(np.mean([METRICS[m](labels[idx], p[idx]) for p in probs[role]]))
                  for m in METRICS for role in roles}
        for m in METRICS:
            weak, ceiling = values[f"weak/{m}"], values[f"ceiling/{m}"]
            gap = ceiling - weak
            for name, role in gains.items():
                values[f"{name}/{m}"] = (values[f"{role}/{m}"] - weak) / gap if gap > 0 else float("nan")
        return values

    by_draw = {m: [_point(test, c, m) for c in columns.get("baseline", [])] for m in METRICS}
    pooled = {f"{role}/{m}": float(np.mean([_point(test, c, m) for c in columns[role]]))
              for m in METRICS for role in roles}
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
    if "baseline" in roles:
        metrics["baseline"]["draws"] = {"n": len(columns["baseline"]),
                                        **{m: _spread(by_draw[m]) for m in METRICS}}
        metrics["baseline_pgr"]["draws"] = {"n": len(columns["baseline"]), **{
            m: _spread([pgr(pooled[f"weak/{m}"], v, pooled[f"ceiling/{m}"])[0] for v in by_draw[m]])
            for m in METRICS}}

    label_rows = predictions[predictions["split"] == "weak_label"]
    weak_hard = (label_rows["weak_prob"] >= 0.5).astype(int)
    metrics["agreement"] = {
        "student_vs_weak_test": float(np.mean((test["student_prob"] >= 0.5) == (test["weak_prob"] >= 0.5))),
        "student_vs_weak_train": float(np.mean((label_rows["student_prob"] >= 0.5).astype(int) == weak_hard)),
        "weak_label_accuracy": float(np.mean(weak_hard == label_rows["label"])),
    }
    per_seed = {
        int(s): {role: float(np.mean([accuracy(g["label"].to_numpy(), g[c].to_numpy()) for c in columns[role]]))
                 for role in roles}
        for s, g in test.groupby("seed")
    }
    return {"metrics": metrics, "per_seed": per_seed, "n_test": int(len(test) // max(1, n_seeds)),
            "n_seeds": int(n_seeds)}
