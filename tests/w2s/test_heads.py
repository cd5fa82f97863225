import warnings

import numpy as np
import pytest
from sklearn.base import clone

from overseer.errors import OverseerError
from overseer.w2s import TorchHead
from overseer.w2s.heads import HeadConvergenceWarning


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
    if hidden_dim:
        assert head.loss_curve_[-1] < head.loss_curve_[0] and head.converged_ is None
    else:
        assert head.converged_ and head.grad_max_ <= head.tol and 0 < head.n_iter_ < head.max_iter


@pytest.mark.parametrize("hidden_dim", [0, 16])
def test_head_follows_sklearn_contract_and_is_deterministic(hidden_dim: int) -> None:
    X, y = _separable()
    head = TorchHead(hidden_dim=hidden_dim, epochs=3, random_state=5)
    assert clone(head).get_params() == head.get_params()
    a = head.fit(X, y).predict_proba(X)
    b = TorchHead(hidden_dim=hidden_dim, epochs=3, random_state=5).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert list(head.classes_) == [0, 1]


def test_a_linear_head_that_runs_out_of_iterations_says_so() -> None:
    X, y = _separable()
    with pytest.warns(HeadConvergenceWarning, match="did not converge: largest gradient .* after 2 L-BFGS"):
        head = TorchHead(max_iter=2, l2=0.01).fit(X, y)
    assert head.converged_ is False and head.grad_max_ > head.tol


def test_the_l2_penalty_shrinks_a_linear_head_as_its_coefficient_grows() -> None:
    X, y = _separable()
    norms = [np.linalg.norm(TorchHead(l2=l2).fit(X, y).coef_) for l2 in (0.1, 10.0, 1000.0)]
    assert norms[0] > norms[1] > norms[2] > 0


@pytest.mark.parametrize("loss", ["xent", "logconf", "product"])
def test_a_warm_started_penalty_path_reaches_the_cold_optima_in_fewer_iterations(loss: str) -> None:
    X, y = _separable()
    soft = np.clip(y * 0.7 + 0.15, 0, 1)
    path = TorchHead(warm_start=True, loss=loss)
    warm_iters, cold_iters = 0, 0
    for l2 in (1000.0, 10.0, 0.1):
        warm = path.set_params(l2=l2).fit(X, soft)
        cold = TorchHead(l2=l2, loss=loss).fit(X, soft)
        np.testing.assert_allclose(warm.predict_proba(X), cold.predict_proba(X), atol=2e-5)
        warm_iters, cold_iters = warm_iters + warm.n_iter_, cold_iters + cold.n_iter_
    assert warm_iters < cold_iters


class _XentWithoutTarget:
    """Cross-entropy through autograd only: a loss that gives no target distribution."""

    reads_own_predictions = False

    def __call__(self, logits, targets, step_frac):
        from overseer.w2s.losses import soft_cross_entropy

        return soft_cross_entropy(logits, targets)


def test_a_loss_without_a_target_is_minimised_through_autograd_to_the_same_optimum(monkeypatch) -> None:
    import overseer.w2s.heads as heads

    X, y = _separable()
    soft = np.clip(y * 0.7 + 0.15, 0, 1)
    closed_form = TorchHead(l2=3.0).fit(X, soft)
    monkeypatch.setattr(heads, "make_loss", lambda name, **kwargs: _XentWithoutTarget())
    autograd = TorchHead(l2=3.0).fit(X, soft)
    assert autograd.converged_ and closed_form.converged_
    np.testing.assert_allclose(autograd.coef_, closed_form.coef_, atol=1e-5)
    np.testing.assert_allclose(autograd.loss_curve_, closed_form.loss_curve_, rtol=1e-9)


@pytest.mark.parametrize("loss", ["logconf", "product"])
def test_a_loss_that_reads_its_own_predictions_is_solved_in_stages(loss: str) -> None:
    X, y = _separable()
    soft = np.clip(y * 0.7 + 0.15, 0, 1)
    staged = TorchHead(loss=loss, stages=5).fit(X, soft)
    assert staged.converged_ and len(staged.loss_curve_) == 5
    one = TorchHead(loss="xent").fit(X, soft)
    assert len(one.loss_curve_) == 1
    # logconf's own hardened predictions sharpen the fit beyond the soft labels
    if loss == "logconf":
        assert np.abs(staged.decision_function(X)).mean() > np.abs(one.decision_function(X)).mean()


def test_soft_labels_are_accepted_and_bad_labels_rejected() -> None:
    X, y = _separable()
    soft = np.clip(y * 0.8 + 0.1, 0, 1)
    TorchHead(epochs=2).fit(X, soft)
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        TorchHead(epochs=1).fit(X, y * 2.0)


def test_nan_loss_is_a_one_line_error() -> None:
    X, y = _separable()
    with pytest.raises(OverseerError, match="training loss became nan at epoch 1 \\(lr=1e\\+20\\); lower the"):
        TorchHead(epochs=1, lr=1e20, hidden_dim=16).fit(X, y)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_features_are_refused_before_training(bad: float) -> None:
    X, y = _separable()
    X[[3, 7], 2] = bad
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warning on the way to the error
        with pytest.raises(OverseerError, match="NaN or inf in 2 of 400 rows \\(first: row 3\\)"):
            TorchHead(epochs=1).fit(X, y)


def test_empty_training_set_is_refused() -> None:
    with pytest.raises(ValueError, match="n > 0"):
        TorchHead(epochs=1).fit(np.zeros((0, 3), np.float32), np.zeros(0))


@pytest.mark.parametrize("value", [0.0, 0.1, 3.7, 123.456])
def test_constant_features_standardise_to_zero_without_warnings(value: float) -> None:
    X, y = _separable()
    X[:, 3] = value  # float32 rounding puts X.mean() a few ulps off this value
    X[:, 5] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        head = TorchHead(epochs=5, lr=1e-2).fit(X[:300], y[:300])
        assert head.scale_[3] == head.scale_[5] == 1.0
        assert head.mean_[3] == np.float32(value)
        X_test = X[300:].copy()
        shifted = X_test.copy()
        shifted[:, 3] += 1.0  # a value never seen in training stays on the feature's own scale
        shifted[:, 5] = 1.0
        proba = head.predict_proba(X_test)
        moved = head.predict_proba(shifted)
    assert np.all(np.isfinite(proba)) and np.all(np.isfinite(moved))
    assert (head.predict(X_test) == y[300:]).mean() > 0.7
    assert np.abs(moved - proba).max() < 0.5
