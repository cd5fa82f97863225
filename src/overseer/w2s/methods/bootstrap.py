"""Bootstrapping through a chain of intermediate models (Burns et al. 2023, §4.3.1)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from overseer.errors import OverseerError
from overseer.models import LADDER, resolve_model
from overseer.w2s.learners import Predictor
from overseer.w2s.methods._common import partition, take
from overseer.w2s.methods.base import Method, StudentContext, w2s_method

FinalChunks = Literal["last", "all"]


@dataclass(frozen=True)
class Stage:
    """One link of the chain: what ``model`` trained on and what it labelled for the next link.

    Positions index the student split. The final stage (the strong student) labels nothing.
    """

    model: str
    train_idx: np.ndarray
    targets: np.ndarray
    labelled_idx: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class Bootstrap:
    """Weak → mid_1 → ... → mid_k → strong, each link trained on its predecessor's soft labels.

    The student split is cut (seeded) into ``k + 1`` disjoint chunks ``C_0..C_k``. ``mid_1`` trains
    on ``C_0`` with the weak labels and labels ``C_1``; ``mid_i`` trains on ``C_{i-1}`` with
    ``mid_{i-1}``'s labels and labels ``C_i``. So no model ever trains on labels it produced, and
    each link sees only its predecessor's labels.

    The strong student trains on ``mid_k``'s labels: with ``final_chunks="last"`` on ``C_k`` only
    (the pure chain); with ``"all"`` (default) on every chunk except ``C_{k-1}``, the one ``mid_k``
    itself trained on, so the student gets more data while every label it sees is still a
    held-out prediction of ``mid_k``. With one intermediate the two coincide.
    """

    chain: tuple[str, ...] | None = None
    final_chunks: FinalChunks = "all"
    loss: str = "xent"
    loss_args: dict[str, Any] = field(default_factory=dict)

    def models(self, ctx: StudentContext) -> tuple[str, ...]:
        """The intermediate models: ``chain``, else the ladder rungs strictly between weak and strong."""
        if self.chain is not None:
            return self.chain
        rungs = list(LADDER)
        if ctx.weak not in LADDER or ctx.strong not in LADDER or rungs.index(ctx.weak) >= rungs.index(ctx.strong):
            raise OverseerError(
                f"bootstrap cannot pick intermediate models between {ctx.weak!r} and {ctx.strong!r} (not both on "
                "the ladder, weak first); give them: --method-arg 'chain=[smollm2-135m-l8]'"
            )
        between = tuple(rungs[rungs.index(ctx.weak) + 1 : rungs.index(ctx.strong)])
        if not between:
            raise OverseerError(f"no ladder rung lies between {ctx.weak!r} and {ctx.strong!r}; give a chain")
        return between

    def run(self, ctx: StudentContext) -> tuple[Predictor, list[Stage]]:
        """Train every link in order; return the strong student and the record of each stage."""
        models = self.models(ctx)
        split, k = ctx.student_split, len(models)
        chunks = partition(len(split), k + 1, ctx.seed)
        stages: list[Stage] = []
        train_idx, targets = chunks[0], np.asarray(ctx.weak_labels)[chunks[0]]
        for i, model in enumerate(models):
            fitted = ctx.learner.fit(model, take(split, train_idx, f"chunk{i}"), targets, self.loss,
                                     self.loss_args, ctx.seed)
            if i < k - 1 or self.final_chunks == "last":
                labelled_idx = chunks[i + 1]
            else:  # the last intermediate labels every chunk it did not train on
                labelled_idx = np.sort(np.concatenate([c for j, c in enumerate(chunks) if j != k - 1]))
            labels = fitted.predict_proba(take(split, labelled_idx, f"labelled{i}"))
            stages.append(Stage(model, train_idx, targets, labelled_idx, labels))
            train_idx, targets = labelled_idx, labels
        student = ctx.learner.fit(ctx.strong, take(split, train_idx, "student"), targets, self.loss,
                                  self.loss_args, ctx.seed)
        stages.append(Stage(ctx.strong, train_idx, targets, np.array([], dtype=int), np.array([])))
        return student, stages

    def train_student(self, ctx: StudentContext) -> Predictor:
        """The strong student at the end of the chain."""
        return self.run(ctx)[0]


@w2s_method("bootstrap")
def bootstrap(
    chain: Sequence[str] | None = None,
    final_chunks: FinalChunks = "all",
    loss: str = "xent",
    loss_args: dict[str, Any] | None = None,
) -> Method:
    """Bootstrapping with intermediate model sizes (Burns et al. 2023, arXiv:2312.09390, §4.3.1).

    Args:
        chain: intermediate models, weakest first (e.g. ``["smollm2-135m-l8"]``); default: the
            ladder rungs strictly between the weak and strong model.
        final_chunks: ``all`` (default) or ``last``: which chunks the strong student trains on;
            see :class:`Bootstrap`.
        loss: the registered loss every link trains with (``xent``, ``logconf``, ``product``...).
        loss_args: its arguments.
    """
    if isinstance(chain, str):
        chain = [chain]
    if chain is not None:
        if not chain:
            raise OverseerError("bootstrap chain is empty; list at least one intermediate model")
        for model in chain:
            resolve_model(model)  # an unknown name fails now, not after the weak model trained
    if final_chunks not in ("last", "all"):
        raise OverseerError(f"bootstrap final_chunks must be 'last' or 'all'; got {final_chunks!r}")
    from overseer.w2s.losses import make_loss

    make_loss(loss, **(loss_args or {}))  # an unknown loss or argument fails now
    return Bootstrap(None if chain is None else tuple(chain), final_chunks, loss, dict(loss_args or {}))
