"""A linear xent head is scikit-learn's L2 logistic regression, on real cached features.

The head minimises mean cross-entropy + l2 / (2 n) * ||w||^2 by full-batch L-BFGS; scikit-learn's
``LogisticRegression(C=1 / l2)`` minimises the same objective (times n). Soft labels are given
to scikit-learn as each row twice, labelled 1 and 0 with weights p and 1 - p: exactly the
soft-label cross-entropy.
"""

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from overseer.data import load_dataset
from overseer.models import ActivationCache
from overseer.w2s.config import L2_GRID
from overseer.w2s.heads import TorchHead
from overseer.w2s.learners import ProbeLearner
from overseer.w2s.splits import w2s_splits


@pytest.fixture(scope="module")
def real_features(tiny_causal: Path, tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> dict[str, np.ndarray]:
    """Features of geo_facts texts from a tiny model, with hard truth and a weaker model's soft labels."""
    dataset = load_dataset("geo_facts", limit=600)
    splits = w2s_splits(dataset, 250, 100, seed=0, n_label=250)
    learner = ProbeLearner(ActivationCache(tmp_path_factory.mktemp("cache"), device="cpu"))
    strong, weak = str(tiny_causal), str(tiny_encoder)
    weak_model = learner.fit(weak, splits.weak_train, splits.weak_train.labels)
    label = splits.weak_label
    return {"X": learner.features(strong, label), "hard": splits.weak_label_truth_for_metrics().astype(np.float32),
            "soft": weak_model.predict_proba(label).astype(np.float32), "X_test": learner.features(strong, splits.test)}


def _sklearn(Z: np.ndarray, y: np.ndarray, l2: float) -> LogisticRegression:
    """scikit-learn's fit of the same objective, to its own tight tolerance; soft labels by weighted duplication."""
    rows = np.concatenate([Z, Z])
    labels = np.concatenate([np.ones(len(y)), np.zeros(len(y))])
    weights = np.concatenate([y, 1 - y]).astype(np.float64)
    keep = weights > 0
    model = LogisticRegression(C=1.0 / l2, solver="lbfgs", tol=1e-10, max_iter=100_000)
    return model.fit(rows[keep], labels[keep], sample_weight=weights[keep])


@pytest.mark.parametrize("labels", ["hard", "soft"])
@pytest.mark.parametrize("l2", L2_GRID)
def test_linear_xent_head_equals_sklearn_logistic_regression(real_features: dict[str, np.ndarray], labels: str,
                                                             l2: float) -> None:
    X, y = real_features["X"], real_features[labels]
    if labels == "soft":
        assert 0.05 < np.mean((y > 0.01) & (y < 0.99))  # really soft labels, not hard ones in disguise
    head = TorchHead(l2=l2).fit(X, y)
    assert head.converged_
    reference = _sklearn(((X - head.mean_) / head.scale_).astype(np.float64), y, l2)
    for features in (X, real_features["X_test"]):  # the training rows and unseen ones
        ours = head.predict_proba(features)[:, 1]
        theirs = reference.predict_proba(((features - head.mean_) / head.scale_).astype(np.float64))[:, 1]
        assert np.abs(ours - theirs).max() < 1e-3
    assert np.ptp(head.predict_proba(X)[:, 1]) > 0.01  # the fit says something: not a constant to compare
