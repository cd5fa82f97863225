"""Metrics with honest uncertainty: accuracy, AUROC, PGR, and bootstrap confidence intervals.

PGR (performance gap recovered, Burns et al. 2023) is
``(student - weak) / (ceiling - weak)``: 0 means the student is no better than its weak
supervisor, 1 means it matches a strong model trained on ground truth. It is undefined when
the ceiling does not beat the weak model, and is then reported with the reason, not a number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a percentile-bootstrap confidence interval."""

    value: float | None
    ci_low: float | None
    ci_high: float | None
    reason: str | None = None  # why value is None, when it is

    def as_dict(self) -> dict[str, float | str | None]:
        """JSON-ready form."""
        return asdict(self)


def accuracy(labels: np.ndarray, probs: np.ndarray) -> float:
    """Share of examples whose predicted class (prob >= 0.5) equals the label."""
    labels = np.asarray(labels)
    return float(np.mean((np.asarray(probs) >= 0.5).astype(int) == labels)) if len(labels) else float("nan")


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney form, ties count half); NaN if one class is missing."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pgr(weak: float, student: float, ceiling: float, min_gap: float = 0.0) -> tuple[float | None, str | None]:
    """Performance gap recovered, or ``(None, reason)`` when the ceiling does not beat the weak model.

    >>> pgr(0.6, 0.7, 0.8)
    (0.5, None)
    >>> pgr(0.7, 0.7, 0.7)[0] is None
    True
    """
    gap = ceiling - weak
    if not np.isfinite(gap) or gap <= min_gap:
        return None, f"ceiling ({ceiling:.4f}) does not beat weak ({weak:.4f}); PGR is undefined"
    return float((student - weak) / gap), None


def bootstrap(
    statistic: Callable[[np.ndarray], float | Sequence[float]],
    n: int,
    n_resamples: int = 1000,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Values of ``statistic(indices)`` over bootstrap resamples of ``n`` items.

    With ``groups`` (one label per item: a seed, a template...), whole groups are resampled
    first and items within each chosen group second, so intervals cover both sources of noise.
    Returns an array of shape (n_resamples, k) for a statistic returning k numbers.
    """
    rng = np.random.default_rng(seed)
    results = []
    if groups is None:
        for _ in range(n_resamples):
            results.append(np.atleast_1d(statistic(rng.integers(0, n, n))))
    else:
        groups = np.asarray(groups)
        members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
        for _ in range(n_resamples):
            chosen = rng.integers(0, len(members), len(members))
            idx = np.concatenate([rng.choice(members[c], len(members[c])) for c in chosen])
            results.append(np.atleast_1d(statistic(idx)))
    return np.asarray(results, dtype=float)


def interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile interval of the finite ``samples``; (None, None) when there are none."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None, None
    alpha = (1 - confidence) / 2
    return float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha))
