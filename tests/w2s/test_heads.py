import numpy as np
import pytest
from sklearn.base import clone

from overseer.errors import OverseerError
from overseer.w2s import TorchHead


def _separable(n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(0, 1, (n, 10)) + 2.0 * y[:, None] * np.eye(10)[0]
    return X.astype(np.float32), y


@pytest.mark.parametrize("hidden_dim", [0, 16])
def test_head_learns_a_separable_task(hidden_dim: int) -> None:
    X, y = _separable()
    head = TorchHead(hidden_dim=hidden_dim, epochs=20, lr=1e-2).fit(X[:300], y[:300])
    assert (head.predict(X[300:]) == y[300:]).mean() > 0.8
    proba = head.predict_proba(X[300:])
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert head.loss_curve_[-1] < head.loss_curve_[0]


def test_head_follows_sklearn_contract_and_is_deterministic() -> None:
    X, y = _separable()
    head = TorchHead(epochs=3, random_state=5)
    assert clone(head).get_params() == head.get_params()
    a = head.fit(X, y).predict_proba(X)
    b = TorchHead(epochs=3, random_state=5).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert list(head.classes_) == [0, 1]


def test_soft_labels_are_accepted_and_bad_labels_rejected() -> None:
    X, y = _separable()
    soft = np.clip(y * 0.8 + 0.1, 0, 1)
    TorchHead(epochs=2).fit(X, soft)
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        TorchHead(epochs=1).fit(X, y * 2.0)


def test_nan_loss_is_a_one_line_error() -> None:
    X, y = _separable()
    X[0, 0] = np.inf
    with pytest.raises(OverseerError, match="training loss became nan at epoch 1 \\(lr=0.001\\)"):
        TorchHead(epochs=1).fit(X, y)
