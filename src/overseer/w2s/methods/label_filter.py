"""Filter or relabel weak labels by their agreement with the strong model's own features."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from overseer.errors import OverseerError
from overseer.w2s.learners import Predictor
from overseer.w2s.methods._common import check_fraction, partition, take
from overseer.w2s.methods.base import Method, StudentContext, w2s_method

FilterMode = Literal["drop", "relabel"]
FilterBy = Literal["knn", "probe"]


def knn_consensus(features: np.ndarray, labels: np.ndarray, k: int, block: int = 1024) -> np.ndarray:
    """Mean label of each example's ``k`` nearest neighbours by cosine similarity, itself excluded.

    Rows are compared ``block`` at a time, so memory stays at ``block * n`` similarities.

    >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> knn_consensus(x, np.array([1.0, 1.0, 0.0, 0.0]), k=1).tolist()
    [1.0, 1.0, 0.0, 0.0]
    """
    n = len(features)
    if not 1 <= k < n:
        raise OverseerError(f"filter k must be between 1 and the number of examples - 1 ({n - 1}); got {k}")
    x = np.asarray(features, dtype=np.float32)
    x = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
    labels = np.asarray(labels, dtype=np.float64)
    consensus = np.empty(n)
    for start in range(0, n, block):
        sim = x[start : start + block] @ x.T  # (block, n)
        rows = np.arange(len(sim))
        sim[rows, start + rows] = -np.inf  # an example is not its own neighbour
        neighbours = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        consensus[start : start + block] = labels[neighbours].mean(1)
    return consensus


def crossfit_probe(features: np.ndarray, labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Held-out predictions of linear probes trained on the other folds to predict ``labels``.

    Each example is scored by a probe that never saw it, so a probe cannot simply memorise a
    wrong weak label; what it predicts is the label the strong features support.
    """
    from overseer.w2s.config import HeadConfig
    from overseer.w2s.heads import TorchHead

    if folds < 2:
        raise OverseerError(f"filter folds must be at least 2 for cross-fitting; got {folds}")
    consensus = np.empty(len(features))
    for i, held_out in enumerate(partition(len(features), folds, seed)):
        train = np.setdiff1d(np.arange(len(features)), held_out)
        head = TorchHead(**HeadConfig().head_kwargs(), random_state=seed + i)
        head.fit(features[train], labels[train])
        consensus[held_out] = head.predict_proba(features[held_out])[:, 1]
    return consensus


def least_consistent(disagreement: np.ndarray, keep_frac: float) -> np.ndarray:
    """Positions of the ``1 - keep_frac`` share of examples that disagree most (ties: earlier kept)."""
    n_keep = int(round(keep_frac * len(disagreement)))
    order = np.argsort(disagreement, kind="stable")
    return np.sort(order[n_keep:])


@dataclass(frozen=True)
class Filter:
    """Score each weak label by how far it is from what the strong features suggest, then act.

    The suggestion (``consensus``) is the mean weak label of the example's ``k`` nearest
    neighbours in the strong model's feature space (``by="knn"``, cosine similarity), or a
    cross-fitted linear probe's prediction of the weak label (``by="probe"``, ``folds`` folds).
    The disagreement is ``|weak - consensus|``; the ``1 - keep_frac`` share that disagree most are
    dropped (``mode="drop"``) or get the consensus as their label (``mode="relabel"``).
    """

    mode: FilterMode = "drop"
    by: FilterBy = "knn"
    k: int = 20
    folds: int = 5
    keep_frac: float = 0.9
    loss: str = "xent"
    loss_args: dict[str, Any] = field(default_factory=dict)

    def consensus(self, ctx: StudentContext) -> np.ndarray:
        """The label the strong model's features suggest for each example of the student split."""
        features = ctx.learner.features(ctx.strong, ctx.student_split)
        weak = np.asarray(ctx.weak_labels, dtype=np.float64)
        if self.by == "knn":
            return knn_consensus(features, weak, self.k)
        return crossfit_probe(features, weak, self.folds, ctx.seed)

    def labels(self, ctx: StudentContext) -> tuple[np.ndarray, np.ndarray]:
        """Positions the student trains on and their labels."""
        weak = np.asarray(ctx.weak_labels, dtype=np.float64)
        consensus = self.consensus(ctx)
        worst = least_consistent(np.abs(weak - consensus), self.keep_frac)
        if self.mode == "drop":
            kept = np.setdiff1d(np.arange(len(weak)), worst)
            return kept, weak[kept]
        relabelled = weak.copy()
        relabelled[worst] = consensus[worst]
        return np.arange(len(weak)), relabelled

    def train_student(self, ctx: StudentContext) -> Predictor:
        """Fit the strong model on the kept or relabelled weak labels."""
        idx, labels = self.labels(ctx)
        if len(idx) == 0:
            raise OverseerError("filter dropped every example; raise keep_frac")
        split = ctx.student_split if len(idx) == len(ctx.student_split) else take(ctx.student_split, idx, "kept")
        return ctx.learner.fit(ctx.strong, split, labels, self.loss, self.loss_args, ctx.seed)


@w2s_method("filter")
def filter_labels(
    mode: FilterMode = "drop",
    by: FilterBy = "knn",
    k: int = 20,
    folds: int = 5,
    keep_frac: float = 0.9,
    loss: str = "xent",
    loss_args: dict[str, Any] | None = None,
) -> Method:
    """Weak-label filtering or relabelling by agreement with the strong model's features.

    kNN scoring follows the "zeta" filter and relabelling of EleutherAI/w2s (``w2s/knn.py``,
    ``w2s/relabel.py``; EleutherAI, "Experiments in weak-to-strong generalization", 2024),
    here with cosine rather than Euclidean neighbours. It rests on the analysis of Lang, Sontag
    and Vijayaraghavan ("Theoretical analysis of weak-to-strong generalization", NeurIPS 2024,
    arXiv:2405.16043): when the strong model's neighbourhoods are label-consistent, weak labels
    that disagree with their neighbours are likely wrong (pseudolabel correction).

    Args:
        mode: ``drop`` the least consistent examples or ``relabel`` them with the consensus.
        by: ``knn`` (neighbours' mean weak label) or ``probe`` (cross-fitted linear probe).
        k: neighbours for ``knn`` (the EleutherAI relabelling sweeps use 20).
        folds: cross-fitting folds for ``probe``.
        keep_frac: share of examples left untouched (0.9: the reference's 10% contamination).
        loss: the registered loss the student trains with; ``loss_args`` its arguments.
    """
    if mode not in ("drop", "relabel"):
        raise OverseerError(f"filter mode must be 'drop' or 'relabel'; got {mode!r}")
    if by not in ("knn", "probe"):
        raise OverseerError(f"filter by must be 'knn' or 'probe'; got {by!r}")
    if k < 1 or folds < 2:
        raise OverseerError(f"filter needs k >= 1 and folds >= 2; got k={k}, folds={folds}")
    check_fraction("filter keep_frac", keep_frac)
    from overseer.w2s.losses import make_loss

    make_loss(loss, **(loss_args or {}))
    return Filter(mode, by, int(k), int(folds), float(keep_frac), loss, dict(loss_args or {}))
