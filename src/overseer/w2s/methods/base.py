"""The contract every weak-to-strong method follows, and its registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from overseer._registry import lookup, names, register
from overseer.w2s.learners import Learner, Predictor
from overseer.w2s.splits import LabeledSplit, UnlabeledSplit


@dataclass(frozen=True)
class StudentContext:
    """Everything a method may use to train the strong student, and nothing more.

    The student's split comes without labels; ``weak_labels`` are the weak supervisor's soft
    labels (P(class 1)) for it. ``weak_train`` (ground truth) is what the weak model itself was
    trained on; methods that need more supervision (e.g. intermediate models in a bootstrap chain)
    may use it, since the weak supervisor had it too.
    """

    strong: str
    weak: str
    student_split: UnlabeledSplit
    weak_labels: np.ndarray
    weak_train: LabeledSplit
    learner: Learner
    seed: int


class Method(Protocol):
    """A weak-to-strong method: ``train_student(ctx)`` returns the trained student."""

    def train_student(self, ctx: StudentContext) -> Predictor:
        """Train and return the strong student from ``ctx``'s weak labels."""
        ...


def w2s_method(name: str) -> Callable[[Callable[..., Method]], Callable[..., Method]]:
    """Register a method factory (keyword hyperparameters → :class:`Method`) under ``name``."""
    return register("w2s_method", name)


def make_method(name: str, **kwargs: Any) -> Method:
    """Build a registered method by name; unknown names list the registered ones."""
    factory = lookup("w2s_method", name)
    try:
        return factory(**kwargs)
    except TypeError as exc:
        from overseer.errors import OverseerError

        raise OverseerError(f"method {name!r}: {exc}") from exc


def method_names() -> list[str]:
    """Registered method names."""
    return names("w2s_method")
