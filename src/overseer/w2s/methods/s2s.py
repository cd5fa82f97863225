"""Strong-to-strong relabelling rounds: each student's predictions become the next student's labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from overseer.errors import OverseerError
from overseer.w2s.learners import Predictor
from overseer.w2s.methods._common import partition, take
from overseer.w2s.methods.base import Method, StudentContext, w2s_method


@dataclass(frozen=True)
class StrongToStrong:
    """Train on weak labels, then ``rounds`` times: relabel the student split, retrain a fresh student.

    With ``folds=0`` (default, as EleutherAI/w2s does) each round's labels are the current
    student's predictions on its own training split: the student's inductive bias smooths the
    labels it was fit to, as in self-training. With ``folds >= 2`` they are cross-fitted: the
    split is cut into ``folds`` parts and each part is labelled by a student trained on the
    others (with the same labels), so no example is labelled by a model that saw its label. The
    returned student is always a fresh fit on the whole split with the last round's labels.
    """

    rounds: int = 2
    folds: int = 0
    loss: str = "xent"
    loss_args: dict[str, Any] = field(default_factory=dict)

    def _fit(self, ctx: StudentContext, idx: np.ndarray | None, labels: np.ndarray, tag: str) -> Predictor:
        split = ctx.student_split if idx is None else take(ctx.student_split, idx, tag)
        targets = labels if idx is None else labels[idx]
        return ctx.learner.fit(ctx.strong, split, targets, self.loss, self.loss_args, ctx.seed)

    def relabel(self, ctx: StudentContext, student: Predictor, labels: np.ndarray, round_: int) -> np.ndarray:
        """New labels for the student split: ``student``'s predictions, or cross-fitted ones."""
        if self.folds < 2:
            return np.asarray(student.predict_proba(ctx.student_split), dtype=np.float64)
        new = np.empty(len(labels))
        everything = np.arange(len(labels))
        for i, part in enumerate(partition(len(labels), self.folds, ctx.seed)):
            others = np.setdiff1d(everything, part)
            fold_student = self._fit(ctx, others, labels, f"round{round_}-train{i}")
            new[part] = fold_student.predict_proba(take(ctx.student_split, part, f"round{round_}-fold{i}"))
        return new

    def run(self, ctx: StudentContext) -> tuple[Predictor, list[np.ndarray]]:
        """The final student and the labels of each round (``[weak, round 1, ..., round r]``)."""
        labels = np.asarray(ctx.weak_labels, dtype=np.float64)
        history = [labels]
        student = self._fit(ctx, None, labels, "all")
        for round_ in range(1, self.rounds + 1):
            labels = self.relabel(ctx, student, labels, round_)
            history.append(labels)
            student = self._fit(ctx, None, labels, "all")
        return student, history

    def train_student(self, ctx: StudentContext) -> Predictor:
        """The student of the last round."""
        return self.run(ctx)[0]


@w2s_method("s2s")
def s2s(rounds: int = 2, folds: int = 0, loss: str = "xent", loss_args: dict[str, Any] | None = None) -> Method:
    """Strong-to-strong relabelling (EleutherAI/w2s ``--s2s_iters``, default 2 rounds there too).

    Reference: EleutherAI, "Experiments in weak-to-strong generalization" (blog and code,
    github.com/EleutherAI/w2s, 2024), where each round retrains the strong model on the previous
    strong student's predictions; related to self-training, whose link to weak-to-strong
    generalization Lang, Sontag and Vijayaraghavan analyse (arXiv:2405.16043).

    Args:
        rounds: relabel-and-retrain rounds after the first student (0 is plain ``xent``).
        folds: 0 (default, as the reference) relabels with the student itself; ``>= 2``
            cross-fits the relabelling over that many folds.
        loss: the registered loss every student trains with; ``loss_args`` its arguments.
    """
    if rounds < 0:
        raise OverseerError(f"s2s rounds must be >= 0; got {rounds}")
    if folds == 1 or folds < 0:
        raise OverseerError(f"s2s folds must be 0 (no cross-fitting) or >= 2; got {folds}")
    from overseer.w2s.losses import make_loss

    make_loss(loss, **(loss_args or {}))
    return StrongToStrong(int(rounds), int(folds), loss, dict(loss_args or {}))
