"""A sequence classifier's settings, file names and training outcome (no torch needed to import them).

:class:`ClassifierConfig` is saved beside a classifier's weights and rebuilds it; :class:`ClassifierFit`
is what :func:`~overseer.models.fit_classifier` returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from overseer._config import ConfigMixin, option
from overseer.errors import OverseerError, check_known
from overseer.models._features import POOLINGS

if TYPE_CHECKING:
    import torch

FORMAT = "overseer.SequenceClassifier"
FORMAT_VERSION = 1
CONFIG_FILE = "classifier.json"
HEAD_FILE = "head.safetensors"
BODY_FILE = "body.safetensors"
ADAPTER_FILE = "adapter_model.safetensors"
ADAPTER_CONFIG_FILE = "adapter_config.json"
TOKENIZER_DIR = "tokenizer"
PAIRINGS = ("concat", "compare")
LIKELIHOOD = "likelihood"
#: How a classifier reads its body: a hidden-state pooling, or (causal bodies) the text's token log-likelihoods.
CLASSIFIER_POOLINGS: tuple[str, ...] = (*POOLINGS, LIKELIHOOD)
DTYPES = ("float32", "bfloat16", "float16")
REWARD_OUTPUTS = ("logit", "probability")

#: ``loss_fn(logits (batch, 2), targets (batch, ...), step_frac in [0, 1]) -> scalar tensor``.
LossFn = Callable[["torch.Tensor", "torch.Tensor", float], "torch.Tensor"]


@dataclass(frozen=True)
class ClassifierConfig(ConfigMixin):
    """Everything needed to rebuild a :class:`SequenceClassifier`; saved beside its weights.

    Types and names (pooling, pairing, dtype) are checked by :class:`~overseer._config.ConfigMixin`
    when the config is built; ``__post_init__`` adds the ranges an annotation cannot say.
    """

    model: str = option(dataclasses.MISSING, "base model, any name load_model accepts (short name, hub id, dir, .gguf)")
    num_layers: int | None = option(None, "keep only the first N blocks; None: all")
    pooling: str | None = option(
        None, f"how the head reads the body ({', '.join(CLASSIFIER_POOLINGS)}); None: the ladder rung's, else last "
              "for causal models and mean for encoders; likelihood (causal models): the mean and the lowest "
              "log-probability of the text's tokens under the body's own language-model head (a generative verifier; "
              "it holds the batch's logits over the vocabulary in float32)",
        choices=CLASSIFIER_POOLINGS)
    pairing: str = option(
        "concat", "how a second text is read: concat (encoders: sentence pair; causal: joined by a newline) or "
                  "compare (each text scored alone; logits are the difference)", choices=PAIRINGS)
    max_length: int = option(512, "tokens per text; causal models keep the end")
    lora: bool = option(False, "LoRA adapters (peft) and the head train; the body is frozen")
    lora_r: int = option(8, "LoRA rank")
    lora_alpha: int = option(16, "LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = option(0.05, "dropout on the LoRA input")
    target_modules: tuple[str, ...] | None = option(
        None, "module names LoRA adapts; None: peft's defaults for the architecture")
    standardize: bool = option(
        True, "centre and scale the head's input with the untrained model's statistics on up to 256 training texts "
              "(set by the first fit_classifier)")
    dtype: str = option("float32", "storage dtype of the body", choices=DTYPES)
    bf16: bool = option(False, "bf16 autocast in forward passes (training and scoring)")
    gradient_checkpointing: bool = option(
        False, "recompute activations in the backward pass: less memory, ~30% slower")
    trust_remote_code: bool = option(False, "allow the hub repo's own Python code")

    def __post_init__(self) -> None:
        if not self.model:
            raise OverseerError(f"classifier model must be a model name or path; got {self.model!r}")
        for name in ("num_layers", "max_length", "lora_r", "lora_alpha"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise OverseerError(f"classifier {name} must be a positive whole number; got {value!r}")
        if not 0 <= self.lora_dropout < 1:
            raise OverseerError(f"classifier lora_dropout must be in [0, 1); got {self.lora_dropout!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ClassifierConfig:
        """Rebuild from :meth:`to_dict` output, refusing unknown keys with the list of known ones."""
        check_known("classifier config field", values, [f.name for f in dataclasses.fields(cls)])
        return cls(**values)


@dataclass
class ClassifierFit:
    """What one :func:`fit_classifier` call did.

    Attributes:
        loss_curve: the training loss of every micro-batch, in order.
        log_history: the Trainer's log records (epoch losses, evaluations, runtime).
        best_eval_loss: lowest held-out loss seen (its weights are the ones kept); None without held-out data.
        stopped_at: optimizer step at which early stopping ended training; None if it ran to the end.
        is_main_process: False on the non-zero ranks of a multi-process run (which should not write files).
    """

    loss_curve: list[float]
    log_history: list[dict[str, float]]
    best_eval_loss: float | None
    stopped_at: int | None
    is_main_process: bool


class TrainingDivergedError(OverseerError):
    """The training loss became NaN or infinite; ``step``, ``value`` and ``lr`` say where."""

    def __init__(self, step: int, value: float, lr: float):
        super().__init__(
            f"classifier training loss became {value} at step {step} (lr={lr}); "
            "lower the learning rate or turn bf16 off"
        )
        self.step, self.value, self.lr = step, value, lr
