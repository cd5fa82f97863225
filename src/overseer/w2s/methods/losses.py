"""Methods that differ only in the student's loss on the weak labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from overseer.w2s.learners import Predictor
from overseer.w2s.methods.base import Method, StudentContext, w2s_method


@dataclass(frozen=True)
class LossMethod:
    """Train the strong model once on the weak labels under a registered loss."""

    loss: str
    loss_args: dict[str, Any] = field(default_factory=dict)

    def train_student(self, ctx: StudentContext) -> Predictor:
        """Fit the strong model on the student split with the weak labels as targets."""
        return ctx.learner.fit(ctx.strong, ctx.student_split, ctx.weak_labels, self.loss, self.loss_args, ctx.seed)


@w2s_method("xent")
def xent(hard: bool = False) -> Method:
    """Naive fine-tuning on weak labels (Burns et al. 2023, §4.2): cross-entropy, soft or hard."""
    return LossMethod("xent", {"hard": hard})


@w2s_method("logconf")
def logconf(aux_coef: float = 0.5, warmup_frac: float = 0.2, schedule: str = "linear") -> Method:
    """Auxiliary confidence loss (Burns et al. 2023, §4.3.2, eq. 1).

    ``schedule="reference"`` reproduces the public reference code's warm-up, whose weight only
    reaches ``warmup_frac * aux_coef`` before jumping to ``aux_coef``.
    """
    return LossMethod("logconf", {"aux_coef": aux_coef, "warmup_frac": warmup_frac, "schedule": schedule})
