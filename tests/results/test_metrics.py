import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from overseer.results.metrics import accuracy, auroc, bootstrap, interval, pgr


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
