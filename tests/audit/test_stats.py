"""Audit statistics against hand-computed numbers (and scikit-learn where it has the same statistic)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from overseer.audit.stats import (
    Rate,
    agreement_summary,
    calibration,
    cohen_kappa,
    elicitation_rate,
    fleiss_kappa,
    paired_difference,
    spearman,
    within_judge_agreement,
)
from overseer.results import wilson_interval

# --- elicitation rate ------------------------------------------------------------------------------


def test_none_scores_are_excluded() -> None:
    rate = elicitation_rate([8, None, 2, 9], ["s1", "s1", "s2", "s2"], threshold=7)
    assert (rate.successes, rate.n, rate.n_scenarios) == (2, 3, 2)
    assert rate.value == pytest.approx(2 / 3) and rate.reason is None
    assert (rate.wilson_low, rate.wilson_high) == wilson_interval(2, 3)


def test_threshold_is_inclusive() -> None:
    rate = elicitation_rate([7.0, 6.99, 10], ["a", "b", "c"], threshold=7.0)
    assert rate.successes == 2


def test_nan_score_raises() -> None:
    with pytest.raises(ValueError, match="NaN|nan"):
        elicitation_rate([8, float("nan"), 2], ["a", "a", "b"])


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(ValueError):
        elicitation_rate([8, 2], ["a"])


def test_no_judged_rollouts() -> None:
    rate = elicitation_rate([None, None], ["a", "b"])
    assert rate.value is None and rate.n == 0 and rate.reason == "no judged rollouts"
    assert rate.bootstrap_low is None and rate.wilson_low is None
    assert rate.as_dict()["reason"] == "no judged rollouts"


def test_bootstrap_interval_contains_value() -> None:
    rng = np.random.default_rng(3)
    scenarios = [f"s{i // 5}" for i in range(60)]
    scores = rng.integers(1, 11, size=60).tolist()
    rate = elicitation_rate(scores, scenarios, n_resamples=500, seed=1)
    assert rate.value == pytest.approx(sum(s >= 7 for s in scores) / 60)
    assert rate.bootstrap_low < rate.value < rate.bootstrap_high
    assert rate.wilson_low < rate.value < rate.wilson_high


def test_bootstrap_collapses_for_one_uniform_scenario() -> None:
    rate = elicitation_rate([9, 9, 9, 9], ["only"] * 4, n_resamples=200)
    assert rate.value == 1.0 and rate.bootstrap_low == 1.0 and rate.bootstrap_high == 1.0
    # Wilson, treating rollouts as independent, does not collapse.
    assert rate.wilson_low < 1.0


def test_bootstrap_resamples_scenarios() -> None:
    # Two scenarios, each internally uniform: drawing both scenarios the same gives rates 0 and 1,
    # each with chance 1/4, so a scenario bootstrap spans [0, 1] while Wilson on 10/20 does not.
    rate = elicitation_rate([9] * 10 + [1] * 10, ["A"] * 10 + ["B"] * 10, n_resamples=1000)
    assert rate.value == 0.5
    assert rate.bootstrap_low == 0.0 and rate.bootstrap_high == 1.0
    assert rate.wilson_low > 0.25 and rate.wilson_high < 0.75


def test_rate_as_dict() -> None:
    rate = elicitation_rate([8, 2], ["a", "b"], n_resamples=50)
    d = rate.as_dict()
    assert isinstance(rate, Rate)
    assert set(d) == {"value", "successes", "n", "wilson_low", "wilson_high", "bootstrap_low", "bootstrap_high",
                      "n_scenarios", "reason"}
    assert d["value"] == 0.5 and d["n"] == 2


# --- paired difference -----------------------------------------------------------------------------


def test_paired_difference_hand_computed() -> None:
    a = {"s1": [9, 9], "s2": [1, 9], "s3": [9]}
    b = {"s1": [1, 1], "s2": [1, 1], "s4": [9]}
    est = paired_difference(a, b)
    # Shared scenarios s1 (1 - 0) and s2 (0.5 - 0): mean 0.75; resampled means are 1, 0.75 or 0.5.
    assert est.value == pytest.approx(0.75)
    assert est.ci_low == pytest.approx(0.5) and est.ci_high == pytest.approx(1.0)
    assert est.reason is None


def test_paired_difference_skips_unjudged_scenario() -> None:
    est = paired_difference({"s1": [9], "s2": [9]}, {"s1": [None], "s2": [1, None]})
    assert est.value == 1.0 and est.ci_low == 1.0 and est.ci_high == 1.0


def test_paired_difference_no_shared_scenarios() -> None:
    est = paired_difference({"s1": [9]}, {"s2": [9]})
    assert est.value is None and est.ci_low is None
    assert est.as_dict()["reason"] == "no scenario judged for both targets"


def test_paired_difference_nan_raises() -> None:
    with pytest.raises(ValueError):
        paired_difference({"s1": [float("nan")]}, {"s1": [3]})


# --- Cohen's kappa ---------------------------------------------------------------------------------


def test_cohen_kappa_hand_computed() -> None:
    a = [1, 1, 0, 0, 1, 0, 1, 1]
    b = [1, 0, 0, 0, 1, 1, 1, 1]
    # po = 6/8, pe = (5/8)^2 + (3/8)^2 = 0.53125, kappa = 0.21875 / 0.46875.
    assert cohen_kappa(a, b) == pytest.approx(0.4666667, abs=1e-6)


def test_cohen_kappa_matches_sklearn() -> None:
    rng = np.random.default_rng(11)
    a = rng.choice(["low", "mid", "high"], size=40).tolist()
    b = [x if rng.random() < 0.6 else str(rng.choice(["low", "mid", "high"])) for x in a]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_cohen_kappa_undefined_and_degenerate() -> None:
    assert cohen_kappa([], []) is None
    assert cohen_kappa([1, 1, 1], [1, 1, 1]) is None
    assert cohen_kappa([1, 1, 1], [0, 0, 0]) == 0.0
    with pytest.raises(ValueError):
        cohen_kappa([1, 0], [1])


# --- Fleiss' kappa ---------------------------------------------------------------------------------


def test_fleiss_kappa_small_hand_case() -> None:
    # Counts (a, b): (3,0) (2,1) (0,3) (1,2); P_i = 1, 1/3, 1, 1/3 -> P_bar 2/3; p = (1/2, 1/2) -> P_e 1/2.
    ratings = [["a", "a", "a"], ["a", "a", "b"], ["b", "b", "b"], ["a", "b", "b"]]
    assert fleiss_kappa(ratings) == pytest.approx(1 / 3)


def test_fleiss_kappa_textbook_formula() -> None:
    ratings = [[0, 0, 1, 2], [1, 1, 1, 1], [2, 2, 0, 2], [0, 0, 0, 1], [2, 1, 2, 2], [0, 1, 2, 0]]
    n_raters = 4
    # n_ij: items x categories counts, then the textbook steps one by one.
    counts = np.array([[row.count(c) for c in (0, 1, 2)] for row in ratings], dtype=float)
    n_items = counts.shape[0]
    p_i = (np.sum(counts**2, axis=1) - n_raters) / (n_raters * (n_raters - 1))
    p_j = counts.sum(axis=0) / (n_items * n_raters)
    p_bar = p_i.mean()
    p_e = np.sum(p_j**2)
    expected = (p_bar - p_e) / (1 - p_e)
    assert fleiss_kappa(ratings) == pytest.approx(expected, abs=1e-12)
    # The same numbers by hand: P_bar = (1/6 + 1 + 1/2 + 1/2 + 1/2 + 1/6) / 6 = 17/36; p = (8, 8, 8)/24,
    # so P_e = 1/3 and kappa = (17/36 - 1/3) / (2/3) = 5/24.
    assert expected == pytest.approx(5 / 24)


def test_fleiss_kappa_perfect_and_undefined() -> None:
    assert fleiss_kappa([["x", "x"], ["y", "y"], ["z", "z"]]) == 1.0
    assert fleiss_kappa([[1, 1, 1], [1, 1, 1]]) is None
    assert fleiss_kappa([]) is None
    with pytest.raises(ValueError):
        fleiss_kappa([[1, 0], [1]])
    with pytest.raises(ValueError):
        fleiss_kappa([[1], [0]])


# --- Spearman --------------------------------------------------------------------------------------


def test_spearman_hand_computed() -> None:
    # d = (0, 1, 1, 0): rho = 1 - 6 * 2 / (4 * 15) = 0.8.
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # Ties averaged: ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4) -> 4.5 / sqrt(4.5 * 5).
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(22.5))


def test_spearman_undefined() -> None:
    assert spearman([1], [2]) is None
    assert spearman([3, 3, 3], [1, 2, 3]) is None
    assert spearman([1, 2, 3], [5, 5, 5]) is None
    with pytest.raises(ValueError):
        spearman([1, float("nan")], [1, 2])


# --- calibration -----------------------------------------------------------------------------------


def test_calibration_hand_computed() -> None:
    out = calibration([0.1, 0.4, 0.6, 0.9], [0, 1, 1, 1], bins=2)
    # Bin [0, .5): mean .25, positives .5; bin [.5, 1]: mean .75, positives 1. ECE = .5*.25 + .5*.25.
    assert out["ece"] == pytest.approx(0.25)
    assert out["brier"] == pytest.approx((0.01 + 0.36 + 0.16 + 0.01) / 4)
    assert out["n"] == 4
    assert out["bins"] == [
        {"low": 0.0, "high": 0.5, "count": 2, "mean_prob": pytest.approx(0.25), "frac_positive": 0.5},
        {"low": 0.5, "high": 1.0, "count": 2, "mean_prob": pytest.approx(0.75), "frac_positive": 1.0},
    ]


def test_calibration_edges_and_empty_bins() -> None:
    out = calibration([0.0, 0.5, 1.0], [0, 1, 1], bins=10)
    assert [(b["low"], b["count"]) for b in out["bins"]] == [(0.0, 1), (0.5, 1), (0.9, 1)]
    # An edge that floating-point multiplication puts one bin low: 1/49 * 49 < 1.
    out = calibration([1 / 49], [1], bins=49)
    assert out["bins"][0]["low"] == pytest.approx(1 / 49)
    assert out["ece"] == pytest.approx(1 - 1 / 49)


def test_calibration_validation_and_empty() -> None:
    assert calibration([], [])["ece"] is None
    with pytest.raises(ValueError):
        calibration([1.2], [1])
    with pytest.raises(ValueError):
        calibration([0.5], [2])
    with pytest.raises(ValueError):
        calibration([0.5, 0.5], [1])


# --- agreement summary -----------------------------------------------------------------------------


def test_agreement_summary_pairwise_deletion() -> None:
    labels = {
        "r1": [1, 1, 0, 0, 1, 0, 1, 1],
        "r2": [1, 0, 0, 0, 1, 1, 1, 1],
        "r3": [1, 1, 0, 0, 1, 0, 1, None],
    }
    scores = {
        "r1": [1, 2, 3, 4, 5, 6, 7, 8],
        "r2": [8, 7, 6, 5, 4, 3, 2, 1],
        "r3": [1, 2, 3, 4, 5, 6, 7, None],
    }
    out = agreement_summary(labels, scores)
    assert out["raters"] == ["r1", "r2", "r3"] and out["n_items"] == 8
    k = out["kappa"]
    assert [k[i][i] for i in range(3)] == [1.0, 1.0, 1.0]
    assert k[0][1] == k[1][0] == pytest.approx(0.4666667, abs=1e-6)
    assert k[0][2] == pytest.approx(1.0)  # identical on the 7 items r3 labelled
    # r2 vs r3 on 7 items: po 5/7, pe 25/49 -> 10/24.
    assert k[1][2] == pytest.approx(10 / 24)
    assert out["n_pairs"] == [[8, 8, 7], [8, 8, 7], [7, 7, 7]]
    # Fleiss on the 7 complete items: P_bar 17/21, P_e 225/441 -> 132/216.
    assert out["fleiss"] == pytest.approx(132 / 216)
    rho = out["spearman"]
    assert rho[0][1] == pytest.approx(-1.0) and rho[0][2] == pytest.approx(1.0) and rho[1][2] == pytest.approx(-1.0)


def test_agreement_summary_two_raters_and_undefined() -> None:
    out = agreement_summary({"a": [1, 1, 1], "b": [1, 1, 1]})
    assert out["fleiss"] is None and "spearman" not in out
    assert out["kappa"] == [[1.0, None], [None, 1.0]]
    with pytest.raises(ValueError):
        agreement_summary({"a": [1, 0], "b": [1]})


# --- within-judge agreement ------------------------------------------------------------------------


def test_within_judge_agreement_hand_computed() -> None:
    repeats = [[8, 9, 7], [2, 3, 8], [1, 1, 1], [9, None, 9]]
    out = within_judge_agreement(repeats, threshold=7)
    assert (out["n_items"], out["n_samples"], out["n_dropped"]) == (3, 3, 1)
    assert out["exact_agreement"] == pytest.approx(2 / 3)
    # Binarised counts (3 T), (1 T, 2 F), (3 F): P_bar 7/9, P_e 41/81 -> 22/40.
    assert out["fleiss_kappa"] == pytest.approx(0.55)
    # Population sds: sqrt(2/3), sqrt(62/9), 0.
    assert out["mean_sd"] == pytest.approx((math.sqrt(2 / 3) + math.sqrt(62 / 9)) / 3)
    assert out["reason"] is None


def test_within_judge_agreement_one_sample() -> None:
    out = within_judge_agreement([[8], [3]])
    assert out["n_samples"] == 1
    assert out["exact_agreement"] is None and out["fleiss_kappa"] is None and out["mean_sd"] is None
    assert out["reason"]


def test_within_judge_agreement_all_one_side() -> None:
    out = within_judge_agreement([[8, 9], [10, 7]])
    assert out["exact_agreement"] == 1.0 and out["fleiss_kappa"] is None and out["reason"]
    assert out["mean_sd"] == pytest.approx((0.5 + 1.5) / 2)


def test_within_judge_agreement_nan_and_ragged_raise() -> None:
    with pytest.raises(ValueError):
        within_judge_agreement([[8, float("nan")]])
    with pytest.raises(ValueError):
        within_judge_agreement([[8, 9], [7]])
