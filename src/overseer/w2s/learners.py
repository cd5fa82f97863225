"""Learners train a model on a split with given targets and return a predictor.

A weak-to-strong method never touches activations or weights directly: it asks a learner to
``fit(model, split, targets, loss=...)`` and gets back something with ``predict_proba(split)``.
The probe learner trains heads on cached activations; other learners (full or LoRA fine-tuning)
plug in under the same interface, so every method runs with every learner.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from overseer._registry import lookup, register
from overseer.errors import OverseerError
from overseer.models import LADDER, ActivationCache, model_kind
from overseer.w2s.splits import UnlabeledSplit


class Predictor(Protocol):
    """A trained model: P(class 1) for every example of a split."""

    def predict_proba(self, split: UnlabeledSplit) -> np.ndarray:
        """P(class 1) for each example of ``split``."""
        ...


class Learner:
    """Trains ``model`` on ``split`` with ``targets`` (hard or soft P(class 1)) under a named loss.

    :meth:`fit` is the interface every method calls: it checks the targets once for every learner,
    then hands them to :meth:`_train`, which a learner implements with :meth:`features`.
    """

    def fit(
        self,
        model: str,
        split: UnlabeledSplit,
        targets: np.ndarray,
        loss: str = "xent",
        loss_args: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> Predictor:
        """Train ``model`` to predict ``targets`` (one probability in [0, 1] per example) on ``split``."""
        targets = np.asarray(targets, dtype=np.float32)
        if targets.shape != (len(split),) or not np.all((targets >= 0) & (targets <= 1)):
            raise OverseerError(f"targets must be {len(split)} probabilities in [0, 1]; got shape {targets.shape}")
        return self._train(model, split, targets, loss, loss_args, seed)

    def _train(self, model: str, split: UnlabeledSplit, targets: np.ndarray, loss: str,
               loss_args: dict[str, Any] | None, seed: int) -> Predictor:
        """Train on checked ``targets`` (float32, in [0, 1]); return the trained predictor."""
        raise NotImplementedError

    def features(self, model: str, split: UnlabeledSplit) -> np.ndarray:
        """Pooled activations of ``model`` on ``split`` (methods that filter by similarity use them)."""
        raise NotImplementedError

    def prefetch(self, model: str, split: UnlabeledSplit) -> None:
        """Prepare ``model``'s view of ``split`` ahead of the fits (a run calls it once per model); default: nothing."""


def default_layer(model: str) -> int:
    """The layer a model is probed at unless asked otherwise: the rung's, else the last."""
    return LADDER[model].layer if model in LADDER else -1


def default_pooling(model: str) -> str:
    """The pooling a model is probed with unless asked otherwise: the rung's, else by model kind."""
    if model in LADDER:
        return LADDER[model].pooling
    return "last" if model_kind(model) == "causal" else "mean"


@dataclass
class ProbePredictor:
    """A head on a model's cached activations.

    ``chosen`` records how the head's regularisation was picked (see :meth:`ProbeLearner._train`).
    """

    learner: ProbeLearner
    model: str
    head: Any
    chosen: dict[str, Any] | None = None

    def predict_proba(self, split: UnlabeledSplit) -> np.ndarray:
        """P(class 1) for each example of ``split``."""
        return self.head.predict_proba(self.learner.features(self.model, split))[:, 1]


class ProbeLearner(Learner):
    """Trains :class:`~overseer.w2s.heads.TorchHead` probes on cached activations.

    Models are named as the caller names them. Two names may be two views of one network (the
    same model probed at two depths): ``aliases`` maps such a view name to the real model, and
    each view keeps its own layer, pooling and remembered rows.

    Args:
        cache: where activations are stored and models loaded from.
        layers: layer to probe for each model name (default: -1, the last).
        poolings: pooling for each model name (default: :func:`default_pooling`).
        pairing: the dataset's pairing (``compare`` probes the difference of the two texts).
        head: keyword arguments of :class:`TorchHead` (hidden_dim, l2, max_iter, ...), plus
            ``l2_grid`` and ``cv_folds``: when the grid lists values, each fit picks its L2
            penalty from it by cross-validation on its own training targets.
        progress: called with the number of texts embedded, for progress bars.
        aliases: view name -> the model it is a view of.
    """

    def __init__(
        self,
        cache: ActivationCache,
        layers: dict[str, int | None] | None = None,
        poolings: dict[str, str | None] | None = None,
        pairing: str = "single",
        max_length: int = 512,
        head: dict[str, Any] | None = None,
        progress: Callable[[int], None] | None = None,
        aliases: dict[str, str] | None = None,
    ):
        self.cache = cache
        self.aliases = dict(aliases or {})
        self.layers = layers or {}
        self.poolings = {k: v for k, v in (poolings or {}).items() if v is not None}
        self.pairing = pairing
        self.max_length = max_length
        self.head = head or {}
        self.progress = progress
        self._rows: dict[tuple[Any, ...], dict[tuple[str, str | None], np.ndarray]] = {}

    def share_rows(self, rows: dict[tuple[Any, ...], dict[tuple[str, str | None], np.ndarray]]) -> None:
        """Remember embedded rows in ``rows``, a memory other learners share (a sweep's jobs, one per learner).

        Rows are kept per view (:meth:`view`), so learners that probe a model the same way share its
        rows and ones that probe it differently never mix them.
        """
        self._rows = rows

    def view(self, model: str) -> tuple[Any, ...]:
        """What ``model``'s features depend on: the real model, layer, pooling, pairing and max length."""
        layer = self.layers.get(model)
        real = self.real_model(model)
        return (real, default_layer(real) if layer is None else layer, self.pooling(model), self.pairing,
                self.max_length)

    def real_model(self, model: str) -> str:
        """The model behind a name: itself, or what the view ``model`` is a view of."""
        return self.aliases.get(model, model)

    def pooling(self, model: str) -> str:
        """The pooling used for ``model``."""
        if model not in self.poolings:
            self.poolings[model] = default_pooling(self.real_model(model))
        return self.poolings[model]

    def prefetch(self, model: str, split: UnlabeledSplit) -> None:
        """Embed ``split`` (e.g. every text a run will need) in one pass, so later splits are lookups.

        Seeds draw different splits of one dataset; embedding their union once costs each text
        one forward pass however many seeds and splits it appears in, and the union is one cache
        entry that the next run with the same texts reads back whole.
        """
        self.features(model, split)

    def features(self, model: str, split: UnlabeledSplit) -> np.ndarray:
        """Pooled activations (n, d) of ``model`` for ``split``, computed once and cached."""
        # Rows are remembered per text, so a subset of a split seen before (methods that filter or
        # chunk the student split) is gathered from memory instead of embedded again.
        rows = self._rows.setdefault(self.view(model), {})
        keys = list(zip(split.texts, split.text_pairs or [None] * len(split.texts), strict=True))
        if keys and all(key in rows for key in keys):
            return np.stack([rows[key] for key in keys])
        features = self._features(model, split)
        rows.update(zip(keys, features, strict=True))
        return features

    def _features(self, model: str, split: UnlabeledSplit) -> np.ndarray:
        real = self.real_model(model)
        layer = self.layers.get(model)
        layer = default_layer(real) if layer is None else layer

        def get(texts: Sequence[str], pairs: Sequence[str] | None) -> np.ndarray:
            return self.cache.features(
                real, texts, [layer], self.pooling(model), pairs, self.max_length, progress=self.progress
            )[layer]

        if self.pairing == "compare":
            # Each side is embedded alone; the probe sees the difference (a Bradley-Terry probe).
            assert split.text_pairs is not None, "compare datasets need text pairs"
            return get(split.texts, None) - get(split.text_pairs, None)
        return get(split.texts, split.text_pairs if self.pairing == "concat" else None)

    def _train(self, model: str, split: UnlabeledSplit, targets: np.ndarray, loss: str,
               loss_args: dict[str, Any] | None, seed: int) -> Predictor:
        """Train a head on ``model``'s activations of ``split`` to predict ``targets``.

        With an L2 grid (the default), the penalty is the grid value whose heads predict
        ``targets`` best on held-out folds (:func:`choose_l2`): only the targets this fit is given
        are read, so a student's choice never sees its split's ground truth.
        """
        from overseer.w2s.heads import TorchHead

        settings = dict(self.head)
        grid = tuple(settings.pop("l2_grid", ()) or ())
        folds = int(settings.pop("cv_folds", 3))
        features = self.features(model, split)
        y = targets
        chosen = None
        if grid:
            chosen = choose_l2(features, y, grid, folds, settings, loss, loss_args, seed)
            settings["l2"] = chosen["l2"]
        head = TorchHead(**settings, loss=loss, loss_args=loss_args, random_state=seed).fit(features, y)
        if chosen is not None or head.converged_ is not None:
            chosen = {**(chosen or {"l2": float(settings.get("l2", 1.0))}), "converged": head.converged_}
        return ProbePredictor(self, model, head, chosen)


def choose_l2(features: np.ndarray, targets: np.ndarray, grid: Sequence[float], folds: int,
              head: dict[str, Any], loss: str = "xent", loss_args: dict[str, Any] | None = None,
              seed: int = 0) -> dict[str, Any]:
    """Pick a head's L2 penalty by ``folds``-fold cross-validation against ``targets`` alone.

    Each grid value trains a head on all folds but one and scores the held-out fold by
    cross-entropy against the targets (hard or soft: a proper score for reproducing them).
    The lowest mean wins; near-ties (within 0.1% of the best) go to the larger penalty, the
    simpler model. Folds are stratified by the rounded target and drawn from ``seed``.

    Returns ``{"l2", "grid", "folds", "cv_loss", "not_converged"}``: the mean held-out loss per grid
    value, and how many of the cross-validation fits stopped short of their tolerance.
    """
    from sklearn.model_selection import StratifiedKFold

    from overseer.w2s.heads import HeadConvergenceWarning, TorchHead

    if len(targets) < 2 * folds:
        raise OverseerError(f"cross-validating the L2 penalty needs at least {2 * folds} examples for {folds} "
                            f"folds; got {len(targets)} (lower --head-cv-folds, or give --head-l2-grid "
                            "with no values)")
    hard = (targets >= 0.5).astype(int)
    if min(np.bincount(hard, minlength=2)) < folds:  # too few of one class to stratify: plain folds
        hard = np.zeros_like(hard)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    fold_indices = list(splitter.split(features, hard))
    eps = 1e-6
    scores: dict[float, list[float]] = {float(penalty): [] for penalty in grid}
    not_converged = 0
    for train_idx, held_idx in fold_indices:
        # One head per fold walks the penalties from strongest to weakest, each fit starting from the
        # last solution (scikit-learn's regularisation path): the same optima, far fewer iterations.
        fitted = TorchHead(**head, loss=loss, loss_args=loss_args, random_state=seed, warm_start=True)
        for penalty in sorted(scores, reverse=True):
            with warnings.catch_warnings():  # counted here; the run reports the count, not one line per fold
                warnings.simplefilter("ignore", HeadConvergenceWarning)
                fitted.set_params(l2=penalty).fit(features[train_idx], targets[train_idx])
            not_converged += fitted.converged_ is False
            p = np.clip(fitted.predict_proba(features[held_idx])[:, 1], eps, 1 - eps)
            t = targets[held_idx]
            scores[penalty].append(float(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))))
    losses = {penalty: float(np.mean(values)) for penalty, values in scores.items()}
    best = min(losses.values())
    chosen = max(d for d, v in losses.items() if v <= best + 1e-3 * abs(best))
    return {"l2": chosen, "grid": [float(d) for d in grid], "folds": folds,
            "cv_loss": {str(d): round(v, 6) for d, v in losses.items()}, "not_converged": not_converged}


def learner(name: str) -> Callable[[type], type]:
    """Register a learner class under ``name`` (``probe``, ``finetune``...)."""
    return register("w2s_learner", name)


def learner_class(name: str) -> type:
    """The learner class registered as ``name``."""
    if name == "probe":  # the default needs neither torch nor transformers to be named
        return lookup("w2s_learner", name)
    from overseer.w2s import finetune  # noqa: F401  (registers "finetune"; imported here to keep imports cheap)

    return lookup("w2s_learner", name)


learner("probe")(ProbeLearner)
