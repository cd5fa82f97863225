"""Classification heads trained in torch on cached activations (the probe mode of weak-to-strong).

:class:`TorchHead` follows the scikit-learn estimator contract: ``__init__`` stores
hyperparameters, ``fit(X, y)`` does the work and returns ``self``, learned state ends in ``_``,
and ``predict_proba`` columns follow ``classes_``. ``y`` may be hard labels (0/1) or soft labels
(P(class 1) in [0, 1]), so the same head trains the weak model, the ceiling and the student.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from overseer.errors import OverseerError
from overseer.w2s.losses import make_loss


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run tiny tensor and BLAS ops on one thread.

    Thread hand-offs cost more than a (64, 576) matmul, and on a busy machine spinning intra-op
    threads made each step about 100x slower; after a model's forward pass has run torch's threads,
    numpy's BLAS threads made a full-batch solve about 10x slower too, so both are held to one.
    """
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)


def _standardiser(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and scale of finite features ``X`` (n, d), safe for constant features.

    A feature that is constant in ``X`` gets its value as mean and scale 1, so it standardises to
    exactly 0 (float32 rounding puts ``X.mean`` a few ulps off the value, and dividing that by a
    near-zero std would turn it into noise) and a different value at prediction time stays on the
    feature's own scale instead of being blown up by 1e6.
    """
    mean = X.mean(0)
    scale = X.std(0) + 1e-6
    constant = (X == X[:1]).all(0)
    mean[constant] = X[0, constant]
    scale[constant] = 1.0
    return mean, scale


class HeadConvergenceWarning(UserWarning):
    """A linear head's full-batch solver stopped before its gradient met the tolerance."""


def l2_penalty(weights: torch.Tensor, l2: float, n: int) -> torch.Tensor:
    """The L2 term added to a head's *mean* loss over ``n`` examples: ``l2 / (2 n) * sum(weights ** 2)``.

    On the summed loss this is ``l2 / 2 * ||w||^2``, scikit-learn's ``LogisticRegression`` objective
    with ``C = 1 / l2``: the penalty grid means what scikit-learn's ``1 / C`` means. Biases are not
    penalised, as there.
    """
    return (l2 / (2 * n)) * (weights * weights).sum()


class TorchHead(ClassifierMixin, BaseEstimator):
    """A linear (``hidden_dim=0``) or one-hidden-layer MLP head trained with a registered loss.

    Features are standardised with the training set's mean and scale (scale 1 for a feature that
    is constant there; NaN or inf features are refused). Both kinds minimise the mean loss plus
    :func:`l2_penalty` of their weights with coefficient ``l2`` (scikit-learn's ``1 / C``).

    A linear head is fitted to convergence: full-batch L-BFGS in float64 from zero weights (or, with
    ``warm_start``, from the previous fit's), deterministic, until the largest gradient component is at most ``tol`` or
    ``max_iter`` iterations; a fit that stops short is recorded (``converged_``) and warned about
    (:class:`HeadConvergenceWarning`). Its single logit ``x @ coef_ + intercept_`` is the log-odds
    of class 1. A loss whose target reads the head's own predictions (logconf, product) is solved
    in ``stages`` full-batch solves, the loss's training fraction going from 0 to 1 over them, each
    one's target fixed from the previous solution (a self-training fixed point); other losses are
    one solve. An MLP head trains by minibatch Adam (``epochs``, ``lr``, ``batch_size``).
    """

    def __init__(
        self,
        hidden_dim: int = 0,
        l2: float = 1.0,
        max_iter: int = 1000,
        tol: float = 1e-6,
        stages: int = 5,
        epochs: int = 30,
        lr: float = 1e-3,
        batch_size: int = 64,
        loss: str = "xent",
        loss_args: dict[str, Any] | None = None,
        random_state: int = 0,
        warm_start: bool = False,
    ):
        self.hidden_dim = hidden_dim
        self.l2 = l2
        self.max_iter = max_iter
        self.tol = tol
        self.stages = stages
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.loss = loss
        self.loss_args = loss_args
        self.random_state = random_state
        self.warm_start = warm_start

    @property
    def linear(self) -> bool:
        """Whether this is a linear head (fitted to convergence) rather than an MLP."""
        return not (self.hidden_dim and self.hidden_dim > 0)

    def fit(self, X: np.ndarray, y: np.ndarray) -> TorchHead:
        """Train on features ``X`` (n, d) and hard or soft labels ``y`` (n,)."""
        with _one_thread():
            return self._fit(X, y)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> TorchHead:
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float32)
        if X.ndim != 2 or len(X) != len(y) or len(X) == 0:
            raise ValueError(f"X must be (n, d) and y (n,) with n > 0; got {X.shape} and {y.shape}")
        if np.any((y < 0) | (y > 1)) or not np.all(np.isfinite(y)):
            raise ValueError("y must hold labels or probabilities in [0, 1]")
        bad = ~np.isfinite(X).all(1)
        if bad.any():
            raise OverseerError(
                f"features hold NaN or inf in {int(bad.sum())} of {len(X)} rows (first: row {int(bad.argmax())}); "
                "check the model's activations (a float16 model can overflow: try float32)"
            )
        self.classes_ = np.array([0, 1])
        self.mean_, self.scale_ = _standardiser(X)
        standardised = (X - self.mean_) / self.scale_
        loss_fn = make_loss(self.loss, **(self.loss_args or {}))
        if self.linear:
            self._fit_linear(standardised, y, loss_fn)
        else:
            self._fit_mlp(standardised, y, loss_fn)
        return self

    def _fit_linear(self, X: np.ndarray, y: np.ndarray, loss_fn: Any) -> None:
        """Full-batch L-BFGS on mean loss + L2 penalty, in float64, once or in ``stages`` (see the class).

        A loss that gives its target distribution (every built-in one) is soft cross-entropy against
        a fixed target in each solve, so the objective and its gradient are computed in closed form
        in numpy and minimised by scipy's L-BFGS-B (milliseconds per fit); a loss that does not is
        minimised through torch's autograd and L-BFGS. With ``warm_start`` a refit starts from the
        previous solution (the solution is unique, so only the number of iterations changes): a
        penalty path fitted from strong to weak penalties costs a fraction of cold fits.
        """
        x64 = X.astype(np.float64)
        n, d = x64.shape
        previous = getattr(self, "coef_", None)
        start = np.zeros(d + 1)
        if self.warm_start and previous is not None and len(previous) == d:
            start = np.append(previous, self.intercept_)
        moving = getattr(loss_fn, "reads_own_predictions", True)  # a loss that does not say: assume it may
        # A moving target needs a first solve on the labels alone (fraction 0) and at least one after it.
        fractions = np.linspace(0.0, 1.0, max(2, int(self.stages))) if moving else np.array([1.0])
        self.loss_curve_ = []
        self.n_iter_ = 0
        worst = 0.0
        params = start
        for stage, frac in enumerate(fractions):
            if hasattr(loss_fn, "target_distribution"):  # the target is fixed for this solve: a convex problem
                # The first target is read from zero weights whatever the start, so a warm start changes
                # only the iterations (product's target mixes in the student's predictions even at 0).
                reader = params if stage else np.zeros(d + 1)
                target = self._stage_target(loss_fn, x64, y, reader, float(frac))
                params, iterations, grad = self._solve_soft_xent(x64, target, params)
            else:
                params, iterations, grad = self._solve_torch(x64, y, loss_fn, params, float(frac))
            self.n_iter_ += iterations
            worst = max(worst, grad)
        self.grad_max_ = worst
        self.converged_ = bool(worst <= self.tol)
        self.coef_ = params[:d].copy()
        self.intercept_ = float(params[d])
        if not self.converged_:
            warnings.warn(
                f"linear head did not converge: largest gradient {worst:.2e} > tol {self.tol:g} after "
                f"{self.n_iter_} L-BFGS iterations (l2={self.l2:g}); raise --head-max-iter",
                HeadConvergenceWarning, stacklevel=4)

    @staticmethod
    def _stage_target(loss_fn: Any, X: np.ndarray, y: np.ndarray, params: np.ndarray, frac: float) -> np.ndarray:
        """P(class 1) that ``loss_fn`` trains towards at training fraction ``frac``, given the current ``params``."""
        z = torch.from_numpy(X @ params[:-1] + params[-1])
        y64 = torch.from_numpy(y.astype(np.float64))
        with torch.no_grad():
            target = loss_fn.target_distribution(torch.stack([torch.zeros_like(z), z], dim=-1),
                                                 torch.stack([1 - y64, y64], dim=-1), frac)
        return target[:, 1].numpy().astype(np.float64)

    def _solve_soft_xent(self, X: np.ndarray, target: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, int, float]:
        """Minimise mean soft cross-entropy to ``target`` (P(class 1)) + :func:`l2_penalty` from ``start``.

        Returns the solution, the iterations used and the largest gradient component there.
        """
        from scipy.optimize import minimize

        n, d = X.shape
        l2 = float(self.l2)

        def value_and_grad(p: np.ndarray) -> tuple[float, np.ndarray]:
            z = X @ p[:d] + p[d]
            # softplus(z) - t z is the cross-entropy of sigmoid(z) against t, stable for any z
            value = float(np.mean(np.logaddexp(0.0, z) - target * z)) + l2 / (2 * n) * float(p[:d] @ p[:d])
            residual = (0.5 * (1.0 + np.tanh(0.5 * z)) - target) / n  # sigmoid without overflow
            grad = np.empty_like(p)
            grad[:d] = X.T @ residual + (l2 / n) * p[:d]
            grad[d] = residual.sum()
            return value, grad

        result = minimize(value_and_grad, start, jac=True, method="L-BFGS-B",
                          options={"maxiter": int(self.max_iter), "maxfun": int(self.max_iter) * 2,
                                   "gtol": float(self.tol), "ftol": 1e-15, "maxcor": 20})
        value, grad = value_and_grad(result.x)
        if not np.isfinite(value):
            raise OverseerError(f"linear head's loss became {value} (l2={self.l2:g}); check the features")
        self.loss_curve_.append(value)
        return result.x, int(result.nit), float(np.abs(grad).max())

    def _solve_torch(self, X: np.ndarray, y: np.ndarray, loss_fn: Any, start: np.ndarray,
                     frac: float) -> tuple[np.ndarray, int, float]:
        """Minimise ``loss_fn`` at training fraction ``frac`` + penalty by torch L-BFGS (any differentiable loss)."""
        xs = torch.from_numpy(X)
        y64 = torch.from_numpy(y.astype(np.float64))
        targets = torch.stack([1 - y64, y64], dim=-1)
        n, d = xs.shape
        params = torch.tensor(start, dtype=torch.float64, requires_grad=True)
        zeros = torch.zeros(n, dtype=torch.float64)
        opt = torch.optim.LBFGS([params], lr=1.0, max_iter=int(self.max_iter), max_eval=int(self.max_iter) * 2,
                                tolerance_grad=float(self.tol), tolerance_change=1e-14, history_size=20,
                                line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            logits = torch.stack([zeros, xs @ params[:d] + params[d]], dim=-1)
            value = loss_fn(logits, targets, frac) + l2_penalty(params[:d], float(self.l2), n)
            value.backward()
            return value

        value = opt.step(closure)
        if not torch.isfinite(value):
            raise OverseerError(f"linear head's loss became {float(value)} (l2={self.l2:g}); check the features")
        final = closure()  # the gradient where the solver stopped
        self.loss_curve_.append(float(final.detach()))
        iterations = int(opt.state[params].get("n_iter", 0))
        return params.detach().numpy().copy(), iterations, float(params.grad.abs().max())

    def _fit_mlp(self, X: np.ndarray, y: np.ndarray, loss_fn: Any) -> None:
        """Minibatch Adam on mean loss + L2 penalty of the weight matrices, ``epochs`` passes."""
        gen = torch.Generator().manual_seed(int(self.random_state))
        torch.manual_seed(int(self.random_state))
        dim = X.shape[1]
        net = torch.nn.Sequential(
            torch.nn.Linear(dim, self.hidden_dim), torch.nn.GELU(), torch.nn.Linear(self.hidden_dim, 2)
        )
        weights = [m.weight for m in net if isinstance(m, torch.nn.Linear)]
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        xs = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        yt = torch.from_numpy(y)
        targets = torch.stack([1 - yt, yt], dim=-1)
        n = len(xs)
        steps_per_epoch = max(1, -(-n // self.batch_size))
        total = self.epochs * steps_per_epoch
        step = 0
        self.loss_curve_ = []
        net.train()
        for epoch in range(self.epochs):
            perm = torch.randperm(n, generator=gen)
            epoch_loss = 0.0
            for start in range(0, n, self.batch_size):
                idx = perm[start : start + self.batch_size]
                loss = loss_fn(net(xs[idx]), targets[idx], step / max(1, total))
                penalised = loss + sum(l2_penalty(w, float(self.l2), n) for w in weights)
                if not torch.isfinite(penalised):
                    raise OverseerError(
                        f"training loss became {penalised.item()} at epoch {epoch + 1} (lr={self.lr}); "
                        "lower the learning rate (--lr)"
                    )
                opt.zero_grad()
                penalised.backward()
                opt.step()
                step += 1
                epoch_loss += float(loss.detach()) * len(idx)
            self.loss_curve_.append(epoch_loss / n)
        net.eval()
        self.model_ = net
        self.converged_ = None  # minibatch training has no convergence check

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Logit of class 1 minus logit of class 0."""
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0]

    def _logits(self, X: np.ndarray) -> np.ndarray:
        standardised = (np.asarray(X, dtype=np.float32) - self.mean_) / self.scale_
        if self.linear:
            z = standardised.astype(np.float64) @ self.coef_ + self.intercept_
            return np.stack([np.zeros_like(z), z], axis=-1)
        with torch.inference_mode():
            return self.model_(torch.from_numpy(standardised)).numpy()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 2), columns in ``classes_`` order."""
        return torch.softmax(torch.from_numpy(self._logits(X)), dim=-1).numpy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels."""
        return self.classes_[self.predict_proba(X).argmax(1)]
