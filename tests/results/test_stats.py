import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from overseer.results.stats import (
    Estimate,
    accuracy,
    auroc,
    auroc_estimate,
    bootstrap,
    interval,
    paired_mean_difference,
    pgr,
    stratified_bootstrap,
    wilson_interval,
)

# --- printing an estimate --------------------------------------------------------------------------


def test_one_spec_formats_value_and_interval() -> None:
    est = Estimate(0.12345, 0.1012, 0.15)
    assert f"{est:.3f}" == "0.123 [0.101, 0.150]"
    assert f"{est:.2f}" == "0.12 [0.10, 0.15]"
    assert f"{Estimate(0.0917, -0.0841, 0.2806):+.3f}" == "+0.092 [-0.084, +0.281]"
    assert f"{Estimate(-0.5, -0.75, -0.25):.1f}" == "-0.5 [-0.8, -0.2]"


def test_a_missing_interval_prints_the_value_alone() -> None:
    assert f"{Estimate(0.5):.2f}" == "0.50"
    assert f"{Estimate(0.5, 0.4, None):.2f}" == "0.50"
    assert f"{Estimate(0.5, float('nan'), float('nan')):.2f}" == "0.50"  # NaN: a table read back by pandas


def test_an_undefined_value_prints_n_a_and_its_reason_on_request() -> None:
    undefined = Estimate(None, None, None, "ceiling does not beat weak")
    assert f"{undefined:.3f}" == "n/a" and f"{undefined:+.2f}" == "n/a"
    assert f"{undefined:.3fr}" == "n/a (ceiling does not beat weak)"
    assert f"{Estimate(None):.3fr}" == "n/a"  # no reason recorded: nothing to add
    assert f"{Estimate(float('nan'), 0.1, 0.2):.2f}" == "n/a"
    assert f"{Estimate(0.25, 0.1, 0.4, 'unused'):.2fr}" == "0.25 [0.10, 0.40]"  # a reason shows only for n/a


def test_from_dict_reads_metrics_json_entries() -> None:
    stored = {"value": 0.5, "ci_low": 0.15, "ci_high": 0.85, "successes": 2, "n": 4}  # a Wilson share
    assert Estimate.from_dict(stored) == Estimate(0.5, 0.15, 0.85)
    full = Estimate(0.2, 0.1, 0.3, None, 0.0)
    assert Estimate.from_dict(full.as_dict()) == full
    assert Estimate.from_dict(None) == Estimate(None) and f"{Estimate.from_dict({}):.3f}" == "n/a"


# --- Wilson interval -------------------------------------------------------------------------------


def test_wilson_one_of_four_by_hand() -> None:
    # p = 0.25, n = 4, z = 1.95996: centre (0.25 + z^2/8) / (1 + z^2/4) = 0.37248,
    # half-width z * sqrt(p(1-p)/4 + z^2/64) / (1 + z^2/4) = 0.32690.
    low, high = wilson_interval(1, 4)
    assert low == pytest.approx(0.04558, abs=5e-5) and high == pytest.approx(0.69938, abs=5e-5)


def test_wilson_seven_of_ten() -> None:
    low, high = wilson_interval(7, 10)
    assert low == pytest.approx(0.3968, abs=5e-5) and high == pytest.approx(0.8922, abs=5e-5)


def test_wilson_boundaries_are_exact() -> None:
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=5e-5)
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(1 - 0.2775, abs=5e-5)


def test_wilson_other_confidence() -> None:
    # 5 of 20 at 90%: z = 1.6449, centre 0.27979, half-width 0.15242, worked out by hand.
    low, high = wilson_interval(5, 20, confidence=0.90)
    assert low == pytest.approx(0.1274, abs=5e-4) and high == pytest.approx(0.4322, abs=5e-4)


def test_wilson_empty_and_invalid() -> None:
    assert wilson_interval(0, 0) == (None, None)
    for successes, n in [(-1, 5), (6, 5)]:
        with pytest.raises(ValueError):
            wilson_interval(successes, n)
    with pytest.raises(ValueError):
        wilson_interval(1, 2, confidence=1.0)


# --- stratified bootstrap and AUROC with interval --------------------------------------------------


def test_auroc_estimate_reproduces_the_audit_games_former_bootstrap() -> None:
    # Measured with organisms.game.detection_auroc before it moved here: same draws, same numbers.
    est = auroc_estimate([True] * 4 + [False] * 4, [0.9, 0.4, 0.7, 0.55, 0.3, 0.6, 0.2, 0.5], n_resamples=200, seed=7)
    assert (est.value, est.ci_low, est.ci_high) == (0.8125, 0.375, 1.0)
    labels = [True, False, True, False, False, True, False, False, True, False]
    scores = [0.8, 0.8, 0.3, 0.1, 0.5, 0.5, 0.9, 0.2, 0.7, 0.4]
    est = auroc_estimate(labels, scores)
    assert (est.value, est.ci_low, est.ci_high) == (0.5833333333333334, 0.20833333333333334, 0.9380208333333329)


def test_auroc_estimate_needs_both_classes() -> None:
    est = auroc_estimate([True, True], [0.5, 0.7], undefined_reason="no controls")
    assert (est.value, est.ci_low, est.ci_high, est.reason) == (None, None, None, "no controls")


def test_stratified_bootstrap_keeps_every_stratum_and_its_size() -> None:
    strata = [np.array([0, 1]), np.array([2, 3, 4, 5, 6])]
    seen = stratified_bootstrap(lambda idx: [len(idx), int(np.sum(idx < 2)), int(np.sum(idx >= 2))], strata,
                                n_resamples=50, seed=0)
    assert seen.shape == (50, 3) and (seen == [7, 2, 5]).all()


# --- paired difference -----------------------------------------------------------------------------


def test_paired_mean_difference_by_hand() -> None:
    # Differences 1, 0, 0, 1: mean 0.5; a resample's mean is a multiple of 1/4 in [0, 1].
    est = paired_mean_difference([1, 1, 0, 1], [0, 1, 0, 0], n_resamples=200)
    assert est.value == 0.5 and est.reason is None and est.undefined_share == 0.0
    assert 0.0 <= est.ci_low < 0.5 < est.ci_high <= 1.0
    assert (est.ci_low * 4).is_integer() and (est.ci_high * 4).is_integer()
    same = paired_mean_difference([0.75, 0.5, 1.0], [0.25, 0.0, 0.5])  # every pair differs by 0.5
    assert (same.value, same.ci_low, same.ci_high) == (0.5, 0.5, 0.5)


def test_paired_mean_difference_empty_and_unpaired() -> None:
    assert paired_mean_difference([], []).value is None
    with pytest.raises(ValueError, match="paired"):
        paired_mean_difference([1.0, 0.0], [1.0])


# --- the statistics themselves ---------------------------------------------------------------------


def test_pgr_values_and_undefined_cases() -> None:
    assert pgr(0.6, 0.7, 0.8) == (pytest.approx(0.5), None)
    assert pgr(0.6, 0.6, 0.8)[0] == 0.0
    assert pgr(0.6, 0.8, 0.8)[0] == pytest.approx(1.0)
    assert pgr(0.6, 0.5, 0.8)[0] == pytest.approx(-0.5)
    value, reason = pgr(0.8, 0.7, 0.75)
    assert value is None and "does not beat weak" in reason
    assert pgr(0.7, 0.9, 0.7)[0] is None


def test_auroc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = np.round(rng.random(500) + 0.3 * labels, 1)  # many ties
    assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    assert np.isnan(auroc(np.ones(5), np.arange(5)))


def test_accuracy_thresholds_at_half() -> None:
    assert accuracy(np.array([1, 0, 1, 0]), np.array([0.5, 0.49, 0.2, 0.9])) == 0.5


def test_bootstrap_interval_covers_truth_and_shrinks_with_n() -> None:
    rng = np.random.default_rng(1)
    widths = []
    for n in (100, 1600):
        x = rng.normal(3.0, 1.0, n)
        samples = bootstrap(lambda idx, x=x: x[idx].mean(), n, n_resamples=500, seed=0)
        low, high = interval(samples[:, 0])
        assert low < 3.0 < high
        widths.append(high - low)
    # Width scales like 1/sqrt(n): 16x the data, about 1/4 the width.
    assert widths[1] < widths[0] / 3


def test_grouped_bootstrap_is_wider_when_groups_differ() -> None:
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(5), 200)
    x = rng.normal(0, 1, 1000) + np.repeat(rng.normal(0, 2, 5), 200)  # strong between-group spread

    def stat(idx: np.ndarray) -> float:
        return float(x[idx].mean())

    flat = interval(bootstrap(stat, 1000, 400, seed=0)[:, 0])
    grouped = interval(bootstrap(stat, 1000, 400, seed=0, groups=groups)[:, 0])
    assert (grouped[1] - grouped[0]) > 3 * (flat[1] - flat[0])


def test_interval_ignores_nan_and_handles_all_nan() -> None:
    assert interval(np.array([np.nan, 1.0, 2.0, 3.0]))[0] >= 1.0
    assert interval(np.array([np.nan, np.nan])) == (None, None)


def test_an_estimate_outside_its_own_bootstrap_interval_gets_no_interval() -> None:
    from overseer.results.stats import OUTSIDE_INTERVAL, estimates

    values = np.linspace(0.0, 1.0, 41)

    def mean(idx: np.ndarray) -> dict[str, float | None]:
        return {"reported": float(values[idx].mean()), "mean": float(values[idx].mean())}

    # a reported value that its resamples do not bracket (as a PGR of -62 printed with [-42.5, 0.49] did):
    # the percentile interval says nothing about it, so none is given, with the reason
    found = estimates(mean, len(values), n_resamples=400, seed=0, point={"reported": 5.0, "mean": 0.5})
    assert found["reported"].value == 5.0 and found["reported"].ci_low is None
    assert found["reported"].reason == OUTSIDE_INTERVAL
    assert f"{found['reported']:.1fr}" == f"5.0 ({OUTSIDE_INTERVAL})" and f"{found['reported']:.1f}" == "5.0"
    # the same resamples bracket the real mean: its interval stays
    assert found["mean"].ci_low < 0.5 < found["mean"].ci_high and found["mean"].reason is None
