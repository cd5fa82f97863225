"""Classification heads trained in torch on cached activations (the probe mode of weak-to-strong).

:class:`TorchHead` follows the scikit-learn estimator contract: ``__init__`` stores
hyperparameters, ``fit(X, y)`` does the work and returns ``self``, learned state ends in ``_``,
and ``predict_proba`` columns follow ``classes_``. ``y`` may be hard labels (0/1) or soft labels
(P(class 1) in [0, 1]), so the same head trains the weak model, the ceiling and the student.
"""

from __future__ import annotations

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
    """Run tiny tensor ops on one thread.

    Thread hand-offs cost more than a (64, 576) matmul, and on a busy machine spinning intra-op
    threads made each step about 100x slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
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


class TorchHead(ClassifierMixin, BaseEstimator):
    """A linear (``hidden_dim=0``) or one-hidden-layer MLP head trained with a registered loss.

    Features are standardised with the training set's mean and scale (scale 1 for a feature that
    is constant there; NaN or inf features are refused); training is minibatch AdamW with weight
    decay (the L2 regularisation that keeps probes from overfitting).
    """

    def __init__(
        self,
        hidden_dim: int = 0,
        epochs: int = 30,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        batch_size: int = 64,
        loss: str = "xent",
        loss_args: dict[str, Any] | None = None,
        random_state: int = 0,
    ):
        self.hidden_dim = hidden_dim
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.loss = loss
        self.loss_args = loss_args
        self.random_state = random_state

    def _network(self, dim: int) -> torch.nn.Module:
        if self.hidden_dim and self.hidden_dim > 0:
            return torch.nn.Sequential(
                torch.nn.Linear(dim, self.hidden_dim), torch.nn.GELU(), torch.nn.Linear(self.hidden_dim, 2)
            )
        return torch.nn.Linear(dim, 2)

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
        gen = torch.Generator().manual_seed(int(self.random_state))
        torch.manual_seed(int(self.random_state))
        net = self._network(X.shape[1])
        loss_fn = make_loss(self.loss, **(self.loss_args or {}))
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        xs = torch.from_numpy((X - self.mean_) / self.scale_)
        targets = torch.stack([1 - torch.from_numpy(y), torch.from_numpy(y)], dim=-1)
        n = len(xs)
        steps_per_epoch = max(1, -(-n // self.batch_size))
        total = self.epochs * steps_per_epoch
        step = 0
        self.loss_curve_: list[float] = []
        net.train()
        for epoch in range(self.epochs):
            perm = torch.randperm(n, generator=gen)
            epoch_loss = 0.0
            for start in range(0, n, self.batch_size):
                idx = perm[start : start + self.batch_size]
                loss = loss_fn(net(xs[idx]), targets[idx], step / max(1, total))
                if not torch.isfinite(loss):
                    raise OverseerError(
                        f"training loss became {loss.item()} at epoch {epoch + 1} (lr={self.lr}); "
                        "lower the learning rate (--lr)"
                    )
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
                epoch_loss += float(loss.detach()) * len(idx)
            self.loss_curve_.append(epoch_loss / n)
        net.eval()
        self.model_ = net
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Logit of class 1 minus logit of class 0."""
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0]

    def _logits(self, X: np.ndarray) -> np.ndarray:
        xs = torch.from_numpy((np.asarray(X, dtype=np.float32) - self.mean_) / self.scale_)
        with torch.inference_mode():
            return self.model_(xs).numpy()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 2), columns in ``classes_`` order."""
        return torch.softmax(torch.from_numpy(self._logits(X)), dim=-1).numpy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels."""
        return self.classes_[self.predict_proba(X).argmax(1)]
