"""The verifier's training objective in the prover-verifier game (Kirchner et al. 2024).

The verifier scores a (problem, solution) pair with one real number ``V``. Kirchner et al. train it
with a Bradley-Terry objective: for two solutions of the same problem, one correct and one
incorrect, the probability that the correct one is preferred is ``sigmoid(V_correct - V_incorrect)``,
and the loss is that probability's negative log, averaged over pairs; a small L2 penalty on the
score keeps the scores centred at 0 (the objective alone only fixes score differences).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from overseer.errors import OverseerError


def _vector(values: torch.Tensor, name: str, n: int | None = None) -> torch.Tensor:
    """``values`` as a 1-D tensor of length ``n`` when given, or a one-line error."""
    if not isinstance(values, torch.Tensor):
        raise OverseerError(f"{name} must be a torch.Tensor; got {type(values).__name__}")
    if values.ndim != 1:
        raise OverseerError(f"{name} must be 1-D (one entry per solution); got shape {tuple(values.shape)}")
    if n is not None and len(values) != n:
        raise OverseerError(f"{name} has {len(values)} entries for {n} solutions; give one per solution")
    return values


def _correct(correct: torch.Tensor, n: int | None = None) -> torch.Tensor:
    """``correct`` as a boolean tensor (from booleans or 0/1), or a one-line error."""
    correct = _vector(correct, "correct", n)
    if correct.dtype != torch.bool:
        if correct.is_complex() or not bool(((correct == 0) | (correct == 1)).all()):
            raise OverseerError(f"correct must hold booleans (or 0/1); got {correct.tolist()!r}")
        correct = correct != 0
    return correct


def pairs(correct: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Every pair ``(i, j)`` of solutions to the same problem with ``i`` correct and ``j`` incorrect.

    Args:
        correct: whether each solution is correct (booleans or 0/1), shape ``(n,)``.
        groups: each solution's problem as an integer id, shape ``(n,)``.

    Returns:
        A ``(P, 2)`` long tensor of index pairs, ordered by ``i`` then ``j``; ``(0, 2)`` when there are none.
    """
    correct = _correct(correct)
    groups = _vector(groups, "groups", len(correct))
    if groups.is_floating_point() or groups.is_complex() or groups.dtype == torch.bool:
        raise OverseerError(f"groups must be integer problem ids; got dtype {groups.dtype}")
    groups = groups.to(correct.device)
    mask = (groups[:, None] == groups[None, :]) & correct[:, None] & ~correct[None, :]
    return mask.nonzero().to(torch.long).reshape(-1, 2)


def bradley_terry_loss(
    scores: torch.Tensor, correct: torch.Tensor, groups: torch.Tensor, score_penalty: float = 1e-3
) -> torch.Tensor:
    r"""The verifier's Bradley-Terry loss with an L2 score penalty (Kirchner et al. 2024, Section 2.2).

    The verifier is trained on pairs of solutions to the same problem with opposite correctness:

    .. math::

        L = \frac{1}{|P|} \sum_{(i, j) \in P} -\log \sigma(V_i - V_j)
            + \lambda \cdot \frac{1}{n} \sum_k V_k^2

    where :math:`P` is every pair with :math:`i` correct, :math:`j` incorrect and both of one problem
    (:func:`pairs`), and :math:`-\log\sigma(x)` is computed as ``softplus(-x)`` for stability. The
    penalty :math:`\lambda` centres the scores at 0. A batch with no such pair (every problem's
    solutions all correct or all incorrect) contributes only the penalty term.

    Args:
        scores: the verifier's score of each solution, shape ``(n,)``, with gradients.
        correct: whether each solution is correct (booleans or 0/1), shape ``(n,)``.
        groups: each solution's problem as an integer id, shape ``(n,)``.
        score_penalty: :math:`\lambda`, the weight of the mean squared score (0 turns it off).

    Returns:
        The loss, a scalar tensor.
    """
    scores = _vector(scores, "scores")
    if len(scores) == 0:
        raise OverseerError("bradley_terry_loss needs at least one score; got an empty batch")
    if not scores.is_floating_point():
        raise OverseerError(f"scores must be a floating-point tensor; got dtype {scores.dtype}")
    if not bool(torch.isfinite(scores).all()):
        raise OverseerError(f"scores must be finite; got {scores.tolist()!r}")
    if isinstance(score_penalty, bool) or not isinstance(score_penalty, int | float) or not score_penalty >= 0:
        raise OverseerError(f"score_penalty must be a number >= 0; got {score_penalty!r}")
    index = pairs(_correct(correct, len(scores)), groups).to(scores.device)
    loss = score_penalty * scores.pow(2).mean()
    if len(index):
        loss = loss + F.softplus(scores[index[:, 1]] - scores[index[:, 0]]).mean()
    return loss


def pair_loss(logits: torch.Tensor, targets: torch.Tensor | None = None, step_frac: float = 0.0) -> torch.Tensor:
    r"""The Bradley-Terry term on pre-formed pairs, as the game's verifier trains on it.

    The game pairs each correct solution with one incorrect solution of the same problem before
    training, and :func:`~overseer.models.fit_classifier`'s ``compare`` pairing hands over, per pair,
    logits whose column difference is :math:`V_\text{correct} - V_\text{incorrect}`. The loss is
    ``softplus(-(V_correct - V_incorrect))`` averaged over pairs: :func:`bradley_terry_loss` with
    each pair its own problem, with the score penalty added by the trainer (``score_penalty``).
    ``targets`` and ``step_frac`` are the trainer's loss-callable arguments and are not used.
    """
    return F.softplus(-(logits[:, 1] - logits[:, 0])).mean()

