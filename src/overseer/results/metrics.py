"""Metrics with honest uncertainty: accuracy, AUROC, PGR, and bootstrap confidence intervals.

PGR (performance gap recovered, Burns et al. 2023) is
``(student - weak) / (ceiling - weak)``: 0 means the student is no better than its weak
supervisor, 1 means it matches a strong model trained on ground truth. It is undefined when
the ceiling does not beat the weak model, and is then reported with the reason, not a number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

UNDEFINED = "undefined on this sample"


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a percentile-bootstrap confidence interval."""

    value: float | None
    ci_low: float | None
    ci_high: float | None
    reason: str | None = None  # why value is None, when it is
    undefined_share: float | None = None  # share of bootstrap resamples on which the statistic was undefined

    def as_dict(self) -> dict[str, float | str | None]:
        """JSON-ready form: ``value``, ``ci_low``, ``ci_high``, ``reason`` (and ``undefined_share`` when known)."""
        out = asdict(self)
        if self.undefined_share is None:
            del out["undefined_share"]
        return out


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


def estimates(
    statistic: Callable[[np.ndarray], Mapping[str, float | None]],
    n: int,
    groups: np.ndarray | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    *,
    point: Mapping[str, float | None] | None = None,
    undefined_reason: str = UNDEFINED,
) -> dict[str, Estimate]:
    """Several named statistics of ``n`` items, each with a bootstrap interval from one set of resamples.

    ``statistic(indices)`` returns ``{name: value}``, where ``None`` or NaN means undefined on that
    sample. All names share the resamples, so intervals of related numbers (a PGR and its three
    accuracies) reflect their correlation. With ``groups`` whole groups (seeds, templates, students)
    are resampled first, then items within them (see :func:`bootstrap`).

    Args:
        statistic: the named statistics of the items at ``indices``.
        n: number of items.
        groups: one group label per item, or None to resample items alone.
        n_resamples: bootstrap resamples.
        seed: seed of the resampling.
        confidence: coverage of the percentile intervals.
        point: the reported values, when they are not ``statistic(range(n))`` (e.g. a mean over
            seeds); ``None`` marks a value undefined.
        undefined_reason: the reason recorded for an undefined value.

    Returns:
        ``{name: Estimate}``; an undefined value has no interval and carries ``undefined_reason``.
        Empty when ``n`` is 0.
    """
    if n == 0:
        return {}
    point = dict(statistic(np.arange(n)) if point is None else point)
    names = list(point)

    def vector(idx: np.ndarray) -> list[float]:
        values = statistic(idx)
        return [float("nan") if values[k] is None else float(values[k]) for k in names]

    samples = bootstrap(vector, n, n_resamples=n_resamples, seed=seed, groups=groups)
    out = {}
    for j, name in enumerate(names):
        share = float(np.mean(~np.isfinite(samples[:, j])))
        if point[name] is None:
            out[name] = Estimate(None, None, None, undefined_reason, share)
        else:
            low, high = interval(samples[:, j], confidence)
            out[name] = Estimate(float(point[name]), low, high, None, share)
    return out


def estimate(
    statistic: Callable[[np.ndarray], float | None],
    n: int,
    groups: np.ndarray | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Estimate:
    """One statistic of ``n`` items with its bootstrap interval (see :func:`estimates`).

    >>> x = np.array([1.0, 2.0, 3.0, 4.0])
    >>> est = estimate(lambda idx: float(x[idx].mean()), len(x), n_resamples=200)
    >>> est.value, est.ci_low <= 2.5 <= est.ci_high
    (2.5, True)
    """
    found = estimates(lambda idx: {"value": statistic(idx)}, n, groups, n_resamples, seed, confidence)
    return found["value"] if found else Estimate(None, None, None, "no items")
