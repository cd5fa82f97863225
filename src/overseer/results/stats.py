"""The statistics every pillar reports with: estimates with honest intervals, and how they are printed.

One module so that every table prints an estimate alike (``f"{est:.3f}"`` -> ``0.123 [0.101, 0.150]``,
``n/a`` when undefined) and every interval comes from the same code: percentile bootstrap (plain,
grouped or stratified), Wilson for a share of successes, paired bootstrap for a difference.

PGR (performance gap recovered, Burns et al. 2023) is
``(student - weak) / (ceiling - weak)``: 0 means the student is no better than its weak
supervisor, 1 means it matches a strong model trained on ground truth. It is undefined when
the ceiling does not beat the weak model, and is then reported with the reason, not a number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

UNDEFINED = "undefined on this sample"
NOT_AVAILABLE = "n/a"
"""How every table prints an undefined estimate."""


def _missing(number: float | None) -> bool:
    """True for None and NaN: nothing to print (a table read back through pandas has NaN for None)."""
    return number is None or math.isnan(number)


OUTSIDE_INTERVAL = "no interval: the estimate lies outside its bootstrap percentile interval (unstable statistic)"
"""The reason of an estimate whose resamples do not bracket it (e.g. a PGR over a near-zero gap)."""


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval (bootstrap or Wilson).

    Formatting applies one float spec to the value and both bounds, so a table has one precision:
    ``f"{est:.3f}"`` gives ``0.123 [0.101, 0.150]``, ``f"{est:+.2f}"`` gives ``+0.12 [-0.03, +0.25]``.
    Without an interval only the value prints; an undefined value prints ``n/a``, and a spec ending
    in ``r`` adds the reason: ``f"{est:.3fr}"`` gives ``n/a (ceiling does not beat weak)``.
    """

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    reason: str | None = None  # why value is None, or why a value has no interval
    undefined_share: float | None = None  # share of bootstrap resamples on which the statistic was undefined

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any] | None) -> Estimate:
        """An estimate read back from metrics.json (extra keys such as ``successes`` are ignored; None: n/a)."""
        if not stored:
            return cls(None)
        return cls(stored.get("value"), stored.get("ci_low"), stored.get("ci_high"), stored.get("reason"),
                   stored.get("undefined_share"))

    def __format__(self, spec: str) -> str:
        with_reason = spec.endswith("r")
        number_spec = spec[:-1] if with_reason else spec
        if _missing(self.value):
            return f"{NOT_AVAILABLE} ({self.reason})" if with_reason and self.reason else NOT_AVAILABLE
        text = format(self.value, number_spec)
        if _missing(self.ci_low) or _missing(self.ci_high):
            return f"{text} ({self.reason})" if with_reason and self.reason else text
        return f"{text} [{format(self.ci_low, number_spec)}, {format(self.ci_high, number_spec)}]"

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


def stratified_bootstrap(
    statistic: Callable[[np.ndarray], float | Sequence[float]],
    strata: Sequence[np.ndarray],
    n_resamples: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """Values of ``statistic(indices)`` over resamples that draw each stratum's items within that stratum.

    ``strata`` are index arrays (e.g. positives, then negatives); each resample keeps every stratum's
    size, so a small sample never loses a class. Strata are drawn in the order given, which fixes the
    random stream. Returns an array of shape (n_resamples, k) like :func:`bootstrap`.
    """
    rng = np.random.default_rng(seed)
    results = []
    for _ in range(n_resamples):
        idx = np.concatenate([rng.choice(members, len(members)) for members in strata])
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
            value = float(point[name])
            if low is not None and high is not None and not (low - 1e-12 <= value <= high + 1e-12):
                # a percentile interval that excludes its own estimate (a ratio over a near-zero gap, say)
                # says the resampling distribution is not centred on it: no interval rather than a wrong one
                out[name] = Estimate(value, None, None, OUTSIDE_INTERVAL, share)
            else:
                out[name] = Estimate(value, low, high, None, share)
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


def auroc_estimate(
    labels: Sequence[bool] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    undefined_reason: str = "needs at least one positive and one negative",
) -> Estimate:
    """AUROC of ``scores`` for ``labels`` with a stratified bootstrap interval (positives, negatives resampled apart).

    Stratifying keeps both classes in every resample: the design fixes how many of each there are, and
    an unstratified resample of a small sample would often lose one.
    """
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    positives, negatives = np.flatnonzero(labels), np.flatnonzero(~labels)
    if not len(positives) or not len(negatives):
        return Estimate(None, None, None, undefined_reason)
    samples = stratified_bootstrap(lambda idx: auroc(labels[idx], scores[idx]), [positives, negatives],
                                   n_resamples, seed)
    low, high = interval(samples[:, 0], confidence)
    return Estimate(auroc(labels, scores), low, high)


def check_confidence(confidence: float) -> None:
    """Reject a coverage outside (0, 1), which would otherwise give a meaningless interval."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Wilson score interval for ``successes`` of ``n``.

    Unlike the normal interval it stays in [0, 1] and does not collapse to a point at 0 or n
    successes, which audits of rare behaviours often see.

    >>> wilson_interval(0, 0)
    (None, None)
    """
    check_confidence(confidence)
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes!r}, n={n!r}")
    if n == 0:
        return None, None
    from scipy.stats import norm  # here, not at the top: scipy.stats costs 0.7 s, and every command imports results

    z = float(norm.ppf(1 - (1 - confidence) / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At the boundaries the exact bound is 0 (or 1); rounding must not leave it at 1e-17.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def paired_mean_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Estimate:
    """Mean of ``a - b`` over pairs, with a bootstrap interval that resamples pairs.

    Pairing (the same prompt or scenario under both conditions) removes what the pair shares from the
    comparison, so a difference shows with fewer items than two independent means would need.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"need paired values, got {a.shape} and {b.shape}")
    diff = a - b
    return estimate(lambda idx: float(diff[idx].mean()), len(diff), n_resamples=n_resamples, seed=seed,
                    confidence=confidence)
