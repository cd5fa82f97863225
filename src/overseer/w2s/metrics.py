"""Weak-to-strong metrics from a predictions table: accuracy, AUROC and PGR with 95% intervals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from overseer.results.metrics import accuracy, auroc, bootstrap, interval, pgr

ROLES = ("weak", "student", "ceiling")
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
    """
    test = predictions[predictions["split"] == "test"].reset_index(drop=True)
    labels = test["label"].to_numpy()
    probs = {role: test[f"{role}_prob"].to_numpy() for role in ROLES}
    n_seeds = test["seed"].nunique()

    def statistic(idx: np.ndarray) -> list[float]:
        values = [METRICS[m](labels[idx], probs[r][idx]) for m in METRICS for r in ROLES]
        out = list(values)
        for k in range(len(METRICS)):
            weak, student, ceiling = values[3 * k : 3 * k + 3]
            gap = ceiling - weak
            out.append((student - weak) / gap if gap > 0 else float("nan"))
        return out

    samples = bootstrap(
        statistic, len(test), n_resamples, seed, groups=test["seed"].to_numpy() if n_seeds > 1 else None
    )
    result: dict[str, Any] = {role: {} for role in ROLES}
    column = 0
    for metric in METRICS:
        for role in ROLES:
            low, high = interval(samples[:, column])
            result[role][metric] = {"value": _point(test, role, metric), "ci_low": low, "ci_high": high}
            column += 1
    result["pgr"] = {}
    for metric in METRICS:
        value, reason = pgr(
            result["weak"][metric]["value"], result["student"][metric]["value"], result["ceiling"][metric]["value"]
        )
        low, high = interval(samples[:, column]) if value is not None else (None, None)
        undefined_share = float(np.mean(~np.isfinite(samples[:, column])))
        result["pgr"][metric] = {
            "value": value,
            "ci_low": low,
            "ci_high": high,
            "reason": reason,
            "undefined_resample_share": undefined_share,
        }
        column += 1

    label_rows = predictions[predictions["split"] == "weak_label"]
    weak_hard = (label_rows["weak_prob"] >= 0.5).astype(int)
    result["agreement"] = {
        "student_vs_weak_test": float(np.mean((probs["student"] >= 0.5) == (probs["weak"] >= 0.5))),
        "student_vs_weak_train": float(np.mean((label_rows["student_prob"] >= 0.5).astype(int) == weak_hard)),
        "weak_label_accuracy": float(np.mean(weak_hard == label_rows["label"])),
    }
    result["per_seed"] = {
        int(s): {role: accuracy(g["label"].to_numpy(), g[f"{role}_prob"].to_numpy()) for role in ROLES}
        for s, g in test.groupby("seed")
    }
    result["n_test"] = int(len(test) // max(1, n_seeds))
    result["n_seeds"] = int(n_seeds)
    return result
