"""Statistics for behavioural audits: elicitation rates with honest intervals, and judge reliability.

An audit scores rollouts with an LLM judge (e.g. 1-10 per behaviour dimension) and reports how often
a behaviour is elicited. Two questions follow every such number: how uncertain is it (few scenarios,
few rollouts each), and how far can the judge be trusted (agreement between judges, and between
repeated samples of one judge). A judge that failed gives ``None``: it is left out and reported apart,
never counted as a zero. A NaN is a bug upstream and raises, so it never enters an average silently.
Undefined statistics are ``None`` with a reason, never NaN.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from overseer.results.stats import (
    Estimate,
    bootstrap,
    check_confidence,
    interval,
    paired_mean_difference,
    wilson_interval,
)

NO_JUDGED = "no judged rollouts"
NO_SHARED = "no scenario judged for both targets"


def _finite(value: Any, what: str) -> float:
    """``value`` as a float, raising on NaN/inf so that a broken score never reaches an average."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} is {number!r}; mark a failed judgement with None, not NaN")
    return number


def _judged(scores: Sequence[float | None], what: str = "score") -> list[tuple[int, float]]:
    """(position, score) of the judged entries: ``None`` (a failed judge) is left out, NaN raises."""
    return [(i, _finite(s, f"{what} {i}")) for i, s in enumerate(scores) if s is not None]


@dataclass(frozen=True)
class Rate:
    """An elicitation rate with a Wilson and a scenario-bootstrap interval.

    Wilson treats rollouts as independent; the bootstrap allows for rollouts of one scenario being
    correlated. The wider of the two is the honest one to quote.
    """

    value: float | None
    successes: int
    n: int  # judged rollouts; failed judgements are not counted
    wilson_low: float | None
    wilson_high: float | None
    bootstrap_low: float | None
    bootstrap_high: float | None
    n_scenarios: int  # distinct scenarios among the judged rollouts
    reason: str | None = None  # why value is None, when it is

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form of every field."""
        return asdict(self)


def elicitation_rate(
    scores: Sequence[float | None],
    scenarios: Sequence[str],
    threshold: float = 7.0,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Rate:
    """Share of judged rollouts scoring at least ``threshold``, with Wilson and scenario-bootstrap intervals.

    ``scenarios`` gives each rollout's scenario; the bootstrap resamples scenarios, then rollouts within
    them, because rollouts of one scenario share its prompt and so are not independent evidence.
    ``None`` scores (failed judgements) are excluded from numerator and denominator; NaN raises.
    """
    if len(scores) != len(scenarios):
        raise ValueError(f"{len(scores)} scores but {len(scenarios)} scenarios; need one scenario per rollout")
    check_confidence(confidence)
    judged = _judged(scores)
    n = len(judged)
    if n == 0:
        return Rate(None, 0, 0, None, None, None, None, 0, NO_JUDGED)
    hits = np.array([s >= threshold for _, s in judged], dtype=float)
    groups = np.array([str(scenarios[i]) for i, _ in judged])
    successes = int(hits.sum())
    w_low, w_high = wilson_interval(successes, n, confidence)
    samples = bootstrap(lambda idx: float(hits[idx].mean()), n, n_resamples=n_resamples, seed=seed, groups=groups)
    b_low, b_high = interval(samples[:, 0], confidence)
    return Rate(successes / n, successes, n, w_low, w_high, b_low, b_high, len(set(groups.tolist())))


def _share(scores: Sequence[float | None], threshold: float, what: str) -> float | None:
    """Elicited share of the judged scores of one scenario, or None when none was judged."""
    judged = _judged(scores, what)
    return sum(s >= threshold for _, s in judged) / len(judged) if judged else None


def paired_difference(
    a: Mapping[str, Sequence[float | None]],
    b: Mapping[str, Sequence[float | None]],
    threshold: float = 7.0,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Estimate:
    """Mean over shared scenarios of (elicited share of target ``a``) - (that of ``b``).

    Pairing by scenario removes scenario difficulty from the comparison, so a difference shows with
    fewer scenarios than comparing two independent rates. The interval resamples scenarios. A scenario
    counts only when both targets have at least one judged rollout in it.
    """
    check_confidence(confidence)
    pairs = []
    for scenario in a:
        if scenario not in b:
            continue
        share_a = _share(a[scenario], threshold, f"score of target a in scenario {scenario!r}, rollout")
        share_b = _share(b[scenario], threshold, f"score of target b in scenario {scenario!r}, rollout")
        if share_a is not None and share_b is not None:
            pairs.append((share_a, share_b))
    if not pairs:
        return Estimate(None, None, None, reason=NO_SHARED)
    shares_a, shares_b = zip(*pairs, strict=True)
    # A mean of finite shares is never undefined, so the audit records no undefined share.
    return replace(paired_mean_difference(shares_a, shares_b, n_resamples, seed, confidence), undefined_share=None)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters' labels: agreement beyond what their label frequencies give by chance.

    None when there are no items or chance agreement is already total (both raters constant and equal),
    where kappa is 0/0.
    """
    if len(a) != len(b):
        raise ValueError(f"raters labelled different numbers of items: {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    count_a, count_b = Counter(a), Counter(b)
    expected = sum(count_a[label] * count_b[label] for label in count_a) / (n * n)
    if expected >= 1 - 1e-12:
        return None
    return float((observed - expected) / (1 - expected))


def fleiss_kappa(ratings: Sequence[Sequence[Hashable]]) -> float | None:
    """Fleiss' kappa for items x raters categorical labels; the many-rater analogue of Cohen's kappa.

    Every item needs the same number (>= 2) of ratings. None when there are no items or chance
    agreement is total (one label throughout), where kappa is 0/0.
    """
    if len(ratings) == 0:
        return None
    n_raters = len(ratings[0])
    if n_raters < 2 or any(len(row) != n_raters for row in ratings):
        raise ValueError("Fleiss' kappa needs the same number (at least 2) of ratings for every item")
    counts = [Counter(row) for row in ratings]
    n_items = len(counts)
    # P_i: share of agreeing rater pairs on item i; P_bar their mean.
    p_bar = sum((sum(c * c for c in row.values()) - n_raters) / (n_raters * (n_raters - 1)) for row in counts) / n_items
    # p_j: share of all ratings in category j; P_e = sum_j p_j^2 is chance agreement.
    totals: Counter[Hashable] = Counter()
    for row in counts:
        totals.update(row)
    p_e = sum((t / (n_items * n_raters)) ** 2 for t in totals.values())
    if p_e >= 1 - 1e-12:
        return None
    return float((p_bar - p_e) / (1 - p_e))


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman rank correlation (ties averaged): do two judges order transcripts alike, whatever their scales.

    None with fewer than 2 items or when either side is constant (no ranking to compare).
    """
    if len(a) != len(b):
        raise ValueError(f"need paired scores, got {len(a)} and {len(b)}")
    x = np.array([_finite(v, f"score {i}") for i, v in enumerate(a)])
    y = np.array([_finite(v, f"score {i}") for i, v in enumerate(b)])
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    return float(spearmanr(x, y).statistic)


def calibration(probs: Sequence[float], labels: Sequence[int], bins: int = 10) -> dict[str, Any]:
    """Expected calibration error, Brier score and the reliability table of predicted probabilities.

    Bins are equal-width on [0, 1], each ``[low, high)`` except the last, which includes 1.0; only
    non-empty bins are listed. ECE weights each bin's |mean prob - positive share| by its count.
    With no items, ``ece`` and ``brier`` are None with a ``reason``.
    """
    if len(probs) != len(labels):
        raise ValueError(f"{len(probs)} probabilities but {len(labels)} labels")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins!r}")
    p = np.array([_finite(v, f"probability {i}") for i, v in enumerate(probs)], dtype=float)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must lie in [0, 1]")
    y = np.array(labels, dtype=float)
    if np.any((y != 0) & (y != 1)):
        raise ValueError("labels must be 0 or 1")
    n = len(p)
    if n == 0:
        return {"ece": None, "brier": None, "n": 0, "bins": [], "reason": "no items"}
    # floor(p * bins) can land one bin off at an edge (1/49 * 49 < 1); compare with the edges to fix it.
    idx = np.clip(np.floor(p * bins).astype(int), 0, bins - 1)
    idx = np.where((idx < bins - 1) & (p >= (idx + 1) / bins), idx + 1, idx)
    idx = np.where((idx > 0) & (p < idx / bins), idx - 1, idx)
    table = []
    ece = 0.0
    for k in range(bins):
        members = idx == k
        count = int(members.sum())
        if count == 0:
            continue
        mean_prob, frac_positive = float(p[members].mean()), float(y[members].mean())
        ece += count / n * abs(mean_prob - frac_positive)
        table.append(
            {"low": k / bins, "high": (k + 1) / bins, "count": count, "mean_prob": mean_prob,
             "frac_positive": frac_positive}
        )
    return {"ece": float(ece), "brier": float(np.mean((p - y) ** 2)), "n": n, "bins": table}


def agreement_summary(
    labels_by_rater: Mapping[str, Sequence[Hashable | None]],
    scores_by_rater: Mapping[str, Sequence[float | None]] | None = None,
) -> dict[str, Any]:
    """Pairwise agreement between judges, laid out as matrices for a heat map.

    Returns ``raters``, ``kappa`` (Cohen's, diagonal 1.0, None where undefined), ``n_pairs`` (items
    each cell rests on), ``spearman`` (only when scores are given), ``fleiss`` (3+ raters, items every
    rater labelled; else None) and ``n_items``. A None label or score drops that item from the pairs
    of that rater only, so one failing judge does not shrink every other comparison.
    """
    raters = list(labels_by_rater)
    lengths = {len(labels_by_rater[r]) for r in raters}
    if len(lengths) > 1:
        raise ValueError("every rater must label the same items")
    n_items = lengths.pop() if lengths else 0
    if scores_by_rater is not None:
        if set(scores_by_rater) != set(raters):
            raise ValueError("scores_by_rater must name the same raters as labels_by_rater")
        if any(len(scores_by_rater[r]) != n_items for r in raters):
            raise ValueError("scores must cover the same items as labels")

    def both(x: Sequence[Any], y: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        kept = [(u, v) for u, v in zip(x, y, strict=True) if u is not None and v is not None]
        return [u for u, _ in kept], [v for _, v in kept]

    size = len(raters)
    kappa: list[list[float | None]] = [[1.0 if i == j else None for j in range(size)] for i in range(size)]
    n_pairs = [[0] * size for _ in range(size)]
    rho: list[list[float | None]] = [[1.0 if i == j else None for j in range(size)] for i in range(size)]
    for i in range(size):
        own = labels_by_rater[raters[i]]
        n_pairs[i][i] = sum(v is not None for v in own)
        for j in range(i + 1, size):
            x, y = both(own, labels_by_rater[raters[j]])
            kappa[i][j] = kappa[j][i] = cohen_kappa(x, y)
            n_pairs[i][j] = n_pairs[j][i] = len(x)
            if scores_by_rater is not None:
                sx, sy = both(scores_by_rater[raters[i]], scores_by_rater[raters[j]])
                rho[i][j] = rho[j][i] = spearman(sx, sy)
    fleiss = None
    if size >= 3:
        complete = [row for row in zip(*(labels_by_rater[r] for r in raters), strict=True) if None not in row]
        fleiss = fleiss_kappa(complete)
    out: dict[str, Any] = {"raters": raters, "kappa": kappa, "n_pairs": n_pairs, "fleiss": fleiss, "n_items": n_items}
    if scores_by_rater is not None:
        out["spearman"] = rho
    return out


def within_judge_agreement(repeats: Sequence[Sequence[float | None]], threshold: float = 7.0) -> dict[str, Any]:
    """How consistently one judge scores the same transcript when sampled repeatedly.

    ``repeats`` is items x samples. Reports ``exact_agreement`` (share of items whose samples all fall
    on the same side of ``threshold``), ``fleiss_kappa`` on those binarised labels and ``mean_sd`` (mean
    population standard deviation of the raw scores per item). Items with a failed sample (None) are
    dropped and counted in ``n_dropped``. Undefined fields are None with a ``reason``.
    """
    n_samples = len(repeats[0]) if len(repeats) else 0
    if any(len(row) != n_samples for row in repeats):
        raise ValueError("every item needs the same number of judge samples")
    rows = []
    for i, row in enumerate(repeats):
        if any(s is None for s in row):
            continue
        rows.append([_finite(s, f"score of item {i}, sample {k}") for k, s in enumerate(row)])
    out: dict[str, Any] = {
        "n_items": len(rows), "n_samples": n_samples, "n_dropped": len(repeats) - len(rows),
        "exact_agreement": None, "fleiss_kappa": None, "mean_sd": None, "reason": None,
    }
    if n_samples < 2:
        out["reason"] = "fewer than two samples per item; agreement needs repeats"
        return out
    if not rows:
        out["reason"] = "no item with every sample judged"
        return out
    scores = np.array(rows)
    binary = scores >= threshold
    out["exact_agreement"] = float(np.mean(np.all(binary == binary[:, :1], axis=1)))
    out["fleiss_kappa"] = fleiss_kappa(binary.tolist())
    out["mean_sd"] = float(np.mean(np.std(scores, axis=1)))
    if out["fleiss_kappa"] is None:
        out["reason"] = "Fleiss' kappa undefined: every sample on the same side of the threshold"
    return out
