"""The one place LoRA adapters are configured, so every trained model (LM or classifier) uses the same settings.

Language models trained by :func:`~overseer.models.finetune_lm` or by a pillar's own TRL trainer (the
prover-verifier game's RL) adapt every linear layer with ``alpha = 2 r`` and no dropout; a
:class:`~overseer.models.SequenceClassifier` passes its config's rank, alpha, dropout and layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ALL_LINEAR = "all-linear"
"""peft's shorthand for every linear layer but the output head."""


def lora_config(
    r: int,
    *,
    alpha: int | None = None,
    dropout: float = 0.0,
    target_modules: str | Sequence[str] | None = ALL_LINEAR,
    task_type: str | None = "CAUSAL_LM",
) -> Any:
    """A :class:`peft.LoraConfig` of rank ``r``.

    Args:
        r: the adapters' rank.
        alpha: the scaling numerator (scale = alpha / r); default ``2 r``.
        dropout: dropout on the adapters' input.
        target_modules: ``all-linear``, a list of module names, or None for peft's defaults for the architecture.
        task_type: peft's task (``CAUSAL_LM`` for a language model; None for a bare body under a classifier head).
    """
    from peft import LoraConfig

    targets = list(target_modules) if target_modules is not None and not isinstance(target_modules, str) else (
        target_modules)
    return LoraConfig(r=r, lora_alpha=2 * r if alpha is None else alpha, lora_dropout=dropout,
                      target_modules=targets, task_type=task_type, bias="none")
