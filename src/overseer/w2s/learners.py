"""Learners train a model on a split with given targets and return a predictor.

A weak-to-strong method never touches activations or weights directly: it asks a learner to
``fit(model, split, targets, loss=...)`` and gets back something with ``predict_proba(split)``.
The probe learner trains heads on cached activations; other learners (full or LoRA fine-tuning)
plug in under the same interface, so every method runs with every learner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from overseer._registry import lookup, register
from overseer.models import LADDER, ActivationCache
from overseer.models._load import model_kind
from overseer.w2s.splits import UnlabeledSplit


class Predictor(Protocol):
    """A trained model: P(class 1) for every example of a split."""

    def predict_proba(self, split: UnlabeledSplit) -> np.ndarray:
        """P(class 1) for each example of ``split``."""
        ...


class Learner(Protocol):
    """Trains ``model`` on ``split`` with ``targets`` (hard or soft P(class 1)) under a named loss."""

    def fit(
        self,
        model: str,
        split: UnlabeledSplit,
        targets: np.ndarray,
        loss: str = "xent",
        loss_args: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> Predictor:
        """Train ``model`` to predict ``targets`` on ``split``; return the trained predictor."""
        ...

    def features(self, model: str, split: UnlabeledSplit) -> np.ndarray:
        """Pooled activations of ``model`` on ``split`` (methods that filter by similarity use them)."""
        ...


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
    """A head on a model's cached activations."""

    learner: ProbeLearner
    model: str
    head: Any

    def predict_proba(self, split: UnlabeledSplit) -> np.ndarray:
        """P(class 1) for each example of ``split``."""
        return self.head.predict_proba(self.learner.features(self.model, split))[:, 1]


class ProbeLearner:
    """Trains :class:`~overseer.w2s.heads.TorchHead` probes on cached activations.

    Args:
        cache: where activations are stored and models loaded from.
        layers: layer to probe for each model name (default: -1, the last).
        poolings: pooling for each model name (default: :func:`default_pooling`).
        pairing: the dataset's pairing (``compare`` probes the difference of the two texts).
        head: keyword arguments of :class:`TorchHead` (hidden_dim, epochs, lr, ...).
        progress: called with the number of texts embedded, for progress bars.
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
    ):
        self.cache = cache
        self.layers = layers or {}
        self.poolings = {k: v for k, v in (poolings or {}).items() if v is not None}
        self.pairing = pairing
        self.max_length = max_length
        self.head = head or {}
        self.progress = progress
        self._rows: dict[str, dict[tuple[str, str | None], np.ndarray]] = {}

    def pooling(self, model: str) -> str:
        """The pooling used for ``model``."""
        if model not in self.poolings:
            self.poolings[model] = default_pooling(model)
        return self.poolings[model]

    def features(self, model: str, split: UnlabeledSplit) -> np.ndarray:
        """Pooled activations (n, d) of ``model`` for ``split``, computed once and cached."""
        # Rows are remembered per text, so a subset of a split seen before (methods that filter or
        # chunk the student split) is gathered from memory instead of embedded again.
        rows = self._rows.setdefault(model, {})
        keys = list(zip(split.texts, split.text_pairs or [None] * len(split.texts), strict=True))
        if keys and all(key in rows for key in keys):
            return np.stack([rows[key] for key in keys])
        features = self._features(model, split)
        rows.update(zip(keys, features, strict=True))
        return features

    def _features(self, model: str, split: UnlabeledSplit) -> np.ndarray:
        layer = self.layers.get(model)
        layer = default_layer(model) if layer is None else layer

        def get(texts: Sequence[str], pairs: Sequence[str] | None) -> np.ndarray:
            return self.cache.features(
                model, texts, [layer], self.pooling(model), pairs, self.max_length, progress=self.progress
            )[layer]

        if self.pairing == "compare":
            # Each side is embedded alone; the probe sees the difference (a Bradley-Terry probe).
            assert split.text_pairs is not None, "compare datasets need text pairs"
            return get(split.texts, None) - get(split.text_pairs, None)
        return get(split.texts, split.text_pairs if self.pairing == "concat" else None)

    def fit(
        self,
        model: str,
        split: UnlabeledSplit,
        targets: np.ndarray,
        loss: str = "xent",
        loss_args: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> ProbePredictor:
        """Train a head on ``model``'s activations of ``split`` to predict ``targets``."""
        from overseer.w2s.heads import TorchHead

        head = TorchHead(**self.head, loss=loss, loss_args=loss_args, random_state=seed)
        head.fit(self.features(model, split), np.asarray(targets, dtype=np.float32))
        return ProbePredictor(self, model, head)


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
