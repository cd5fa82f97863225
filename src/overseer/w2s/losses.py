"""Training losses for students of weak supervisors (Burns et al. 2023, §4.3.2 and App. A.4).

Each loss maps ``(logits, targets, step_frac)`` to a scalar, where ``logits`` has shape
(batch, 2), ``targets`` (batch, 2) holds soft or hard labels, and ``step_frac`` in [0, 1] is the
share of training done. Losses are registered by name so configs and the CLI can select them.

The built-in losses are all cross-entropy towards a target distribution; each says what that
target is (``target_distribution``) and whether it reads the student's own predictions
(``reads_own_predictions``). A full-batch solver uses both: a loss whose target is fixed is one
convex problem, one whose target moves with the student is solved as a sequence of such problems
(:class:`~overseer.w2s.heads.TorchHead`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from overseer._registry import lookup, names, register

Loss = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
WarmupSchedule = Literal["linear", "reference"]


def confidence_coefficient(
    step_frac: float, aux_coef: float, warmup_frac: float, schedule: WarmupSchedule = "linear"
) -> float:
    """Weight of the student's own hardened predictions at ``step_frac`` of training.

    ``linear`` rises linearly from 0 to ``aux_coef`` over the first ``warmup_frac`` of training,
    as the paper describes. ``reference`` reproduces the public reference code, which uses
    ``step_frac`` itself during warm-up (so it only reaches ``warmup_frac * aux_coef`` before
    jumping to ``aux_coef``); it exists so that code's numbers can be reproduced.

    >>> confidence_coefficient(0.1, 0.5, 0.2)
    0.25
    >>> confidence_coefficient(0.5, 0.5, 0.2)
    0.5
    """
    if schedule == "linear":
        ramp = 1.0 if warmup_frac <= 0 else min(1.0, step_frac / warmup_frac)
    elif schedule == "reference":
        ramp = 1.0 if step_frac > warmup_frac else step_frac
    else:
        raise ValueError(f"unknown warmup schedule {schedule!r}; allowed: linear, reference")
    return aux_coef * ramp


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy against a target distribution (batch, 2), in float32 or the logits' wider type."""
    logits = logits if logits.dtype == torch.float64 else logits.float()
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def harden(probs_pos: torch.Tensor, positive_share: float) -> torch.Tensor:
    """Hard one-hot labels from P(class 1), thresholded so ``positive_share`` of them are class 1."""
    threshold = torch.quantile(probs_pos, 1.0 - positive_share)
    hard_pos = (probs_pos >= threshold).float()
    return torch.stack([1.0 - hard_pos, hard_pos], dim=-1)


@dataclass(frozen=True)
class CrossEntropy:
    """Cross-entropy on the weak labels, soft (the paper's default) or hardened to 0/1."""

    hard: bool = False
    reads_own_predictions = False

    def target_distribution(self, logits: torch.Tensor, targets: torch.Tensor, step_frac: float) -> torch.Tensor:
        """The weak labels, hardened to one-hot when ``hard``."""
        return F.one_hot(targets.argmax(-1), 2).to(targets.dtype) if self.hard else targets

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, step_frac: float) -> torch.Tensor:
        """Mean cross-entropy of ``logits`` against the (optionally hardened) weak labels."""
        return soft_cross_entropy(logits, self.target_distribution(logits, targets, step_frac))


@dataclass(frozen=True)
class AuxConfidence:
    """The auxiliary confidence loss ("logconf", Burns et al. 2023 eq. 1).

    The target mixes the weak labels with the student's own predictions, hardened at a threshold
    chosen so their class balance matches the weak labels' in the batch:
    ``(1 - a) * weak + a * hardened(student)``, with ``a`` warmed up by :func:`confidence_coefficient`.
    This lets a student that is confident disagree with its weak supervisor.
    """

    aux_coef: float = 0.5
    warmup_frac: float = 0.2
    schedule: WarmupSchedule = "linear"
    reads_own_predictions = True

    def target_distribution(self, logits: torch.Tensor, targets: torch.Tensor, step_frac: float) -> torch.Tensor:
        """``(1 - a) * weak + a * hardened(student)`` (no gradient flows through the student's part)."""
        coef = confidence_coefficient(step_frac, self.aux_coef, self.warmup_frac, self.schedule)
        probs_pos = torch.softmax(logits.detach().float(), dim=-1)[:, 1]
        positive_share = float(targets[:, 1].mean())
        hardened = harden(probs_pos, positive_share).to(targets.dtype)
        return (1.0 - coef) * targets + coef * hardened

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, step_frac: float) -> torch.Tensor:
        """Cross-entropy against the weak labels mixed with the student's own hardened predictions."""
        return soft_cross_entropy(logits, self.target_distribution(logits, targets, step_frac))


@register("w2s_loss", "xent")
def xent(hard: bool = False) -> Loss:
    """Cross-entropy on weak labels (soft by default)."""
    return CrossEntropy(hard=hard)


@register("w2s_loss", "logconf")
def logconf(aux_coef: float = 0.5, warmup_frac: float = 0.2, schedule: WarmupSchedule = "linear") -> Loss:
    """The auxiliary confidence loss, with the paper's linear warm-up by default."""
    return AuxConfidence(aux_coef=aux_coef, warmup_frac=warmup_frac, schedule=schedule)


def make_loss(name: str, **kwargs: object) -> Loss:
    """Build a registered loss by name with its keyword arguments."""
    return lookup("w2s_loss", name)(**kwargs)


def loss_names() -> list[str]:
    """Names of the registered losses."""
    return names("w2s_loss")


@dataclass(frozen=True)
class ProductLoss:
    """The product loss of the public weak-to-strong reference code (Burns et al. 2023, openai/weak-to-strong).

    The target is the normalised product of the two experts, ``weak ** alpha * student ** beta``
    (a product of experts: both must agree for a class to keep its mass), detached, and the
    student is trained by cross-entropy towards it. In log space, per example:
    ``target = softmax(alpha * log(weak) + beta * log_softmax(logits))``. Weak probabilities are
    floored at 1e-12, so hard 0/1 labels give a finite target (the weak expert then decides).

    ``warmup_frac`` is an addition: ``beta`` rises linearly from 0 over that share of training, so
    a freshly initialised student's arbitrary predictions do not sharpen the target at the start.
    The reference code accepts a ``warmup_frac`` but ignores it; the default 0 reproduces it.
    """

    alpha: float = 1.0
    beta: float = 1.0
    warmup_frac: float = 0.0
    reads_own_predictions = True

    def targets(self, logits: torch.Tensor, targets: torch.Tensor, step_frac: float) -> torch.Tensor:
        """The (batch, 2) product-of-experts target the student is pulled towards (no gradient)."""
        ramp = 1.0 if self.warmup_frac <= 0 else min(1.0, step_frac / self.warmup_frac)
        log_weak = torch.log(targets.float().clamp_min(1e-12))
        log_student = F.log_softmax(logits.float(), dim=-1)
        return torch.softmax(self.alpha * log_weak + self.beta * ramp * log_student, dim=-1).detach()

    def target_distribution(self, logits: torch.Tensor, targets: torch.Tensor, step_frac: float) -> torch.Tensor:
        """The product target (:meth:`targets`)."""
        return self.targets(logits, targets, step_frac).to(targets.dtype)

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, step_frac: float) -> torch.Tensor:
        """Cross-entropy of ``logits`` towards the product target."""
        return soft_cross_entropy(logits, self.targets(logits, targets, step_frac))


@register("w2s_loss", "product")
def product(alpha: float = 1.0, beta: float = 1.0, warmup_frac: float = 0.0) -> Loss:
    """The product loss: cross-entropy towards ``weak ** alpha * student ** beta``, normalised."""
    return ProductLoss(alpha=alpha, beta=beta, warmup_frac=warmup_frac)
