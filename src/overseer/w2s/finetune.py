"""Fine-tuning learner: full or LoRA fine-tuning of a whole model with a 2-class head.

The probe learner trains heads on frozen activations; this learner trains the transformer itself,
as Burns et al. 2023 did. It plugs in under the same :class:`~overseer.w2s.learners.Learner`
interface (``overseer w2s run --learner finetune --learner-arg lora=true``), so every method runs
with it, and it uses the registered losses unchanged (``step_frac = global_step / max_steps``).

The model and its training live in the model layer: each fit builds an
:class:`~overseer.models.SequenceClassifier` and trains it with :func:`~overseer.models.fit_classifier`
(:class:`transformers.Trainer`: one code path for CPU, one GPU and several GPUs under
``accelerate launch`` or ``torchrun``). This module maps :class:`FinetuneConfig` onto them, holds out
weak labels for early stopping and turns failures into hints about ``--learner-arg`` flags. No
checkpoint is written unless ``save_model`` is set; then the classifier is saved where
:meth:`SequenceClassifier.load <overseer.models.SequenceClassifier.load>` reads it back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from overseer._config import ConfigMixin, from_mapping, option
from overseer.errors import OverseerError
from overseer.models import (
    SCHEDULERS,
    ActivationCache,
    ClassifierConfig,
    SequenceClassifier,
    TrainingDivergedError,
    fit_classifier,
    free_accelerator_memory,
)
from overseer.w2s.learners import ProbeLearner, learner
from overseer.w2s.losses import make_loss, soft_cross_entropy
from overseer.w2s.splits import UnlabeledSplit

if TYPE_CHECKING:
    from overseer.models import LoadedModel



def _classifier_setting(name: str) -> Any:
    """A field for the classifier's own setting ``name``, passed to it unchanged: default and help come from there."""
    (setting,) = [f for f in dataclasses.fields(ClassifierConfig) if f.name == name]
    return option(setting.default, setting.metadata["help"], identity=setting.metadata["identity"])


@dataclass(frozen=True)
class FinetuneConfig(ConfigMixin):
    """Hyperparameters of one fine-tuning run (each is also a ``--learner-arg KEY=VALUE``).

    The defaults follow the public weak-to-strong reference code (batch 32, 2 epochs, cosine
    schedule, no weight decay) with learning rate 5e-5, its choice for small models, except that
    every fit holds out 10% of its own training labels for early stopping (the regularisation a
    student can choose without ground truth; the weak model and the ceiling get the same).
    Types and the scheduler's name are checked by :class:`~overseer._config.ConfigMixin` when the
    config is built; ``__post_init__`` adds the ranges an annotation cannot say.
    """

    lr: float | None = option(
        None, "peak AdamW learning rate; None: 5e-5 for full fine-tuning (the reference's), 5e-4 for LoRA")
    head_lr: float | None = option(
        None, "learning rate of the 2-class head; None: the same as lr (the reference code's choice)")
    standardize: bool = option(
        True, "centre and scale the head's input with statistics of the untrained model on up to 256 training "
              "texts (as probes do); false: the reference code's raw head")
    epochs: float = option(2.0, "passes over the training split")
    batch_size: int = option(32, "examples per device per optimizer micro-step")
    grad_accum: int = option(1, "micro-steps per optimizer step (effective batch: batch_size x grad_accum x GPUs)")
    lora: bool = option(False, "train LoRA adapters (peft) and the head, not all weights")
    lora_r: int = _classifier_setting("lora_r")
    lora_alpha: int = _classifier_setting("lora_alpha")
    lora_dropout: float = _classifier_setting("lora_dropout")
    target_modules: tuple[str, ...] | None = _classifier_setting("target_modules")
    gradient_checkpointing: bool = _classifier_setting("gradient_checkpointing")
    bf16: bool | str = option("auto", "bf16 autocast; 'auto': on when the CUDA device supports it")
    max_length: int | None = option(
        None, "tokens per text (causal models keep the end); None: the experiment's")
    warmup_ratio: float = option(0.0, "share of steps with linear learning-rate warm-up")
    lr_scheduler: str = option("cosine", "learning-rate schedule", choices=SCHEDULERS)
    weight_decay: float = option(0.0, "AdamW weight decay")
    eval_frac: float = option(
        0.1, "share of each fit's training split (a student's: weak-labelled) held out for early stopping "
             "against those same labels; 0: none")
    early_stopping_patience: int = option(1, "evaluations without a lower held-out loss before training stops")
    eval_steps: int | None = option(None, "evaluate the held-out slice every N steps; None: after each epoch")
    save_model: bool = option(
        False, "write the trained classifier (LoRA: adapters only, plus head and config) to output_dir; "
               "overseer.models.SequenceClassifier.load reads it back", identity="none")
    output_dir: str = option("finetuned", "where save_model writes, one folder per fit", identity="none")

    def __post_init__(self) -> None:
        for name in ("epochs", "lora_dropout", "warmup_ratio", "weight_decay", "eval_frac", "lr", "head_lr"):
            if getattr(self, name) is not None:  # numbers as floats, as ever: 1 reaches the Trainer as 1.0
                object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("lr", "head_lr"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise OverseerError(f"finetune {name} must be a positive number; got {value}")
        for name in ("epochs", "batch_size", "grad_accum", "lora_r", "lora_alpha", "early_stopping_patience"):
            if getattr(self, name) <= 0:
                raise OverseerError(f"finetune {name} must be positive; got {getattr(self, name)}")
        for name in ("max_length", "eval_steps"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise OverseerError(f"finetune {name} must be positive or None; got {getattr(self, name)}")
        for name in ("lora_dropout", "warmup_ratio", "eval_frac"):
            if not 0 <= getattr(self, name) < 1:
                raise OverseerError(f"finetune {name} must be in [0, 1); got {getattr(self, name)}")
        if self.weight_decay < 0:
            raise OverseerError(f"finetune weight_decay must be >= 0; got {self.weight_decay}")
        if self.bf16 not in (True, False, "auto"):
            raise OverseerError(f"finetune bf16 must be true, false or auto; got {self.bf16!r}")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> FinetuneConfig:
        """Build from ``--learner-arg`` keywords: unknown ones and wrong types are one line naming ``finetune``."""
        return from_mapping(cls, kwargs, name="finetune")

    @property
    def learning_rate(self) -> float:
        """``lr``, or its default: LoRA adapters start at zero and need a larger step than full weights."""
        if self.lr is not None:
            return self.lr
        return 5e-4 if self.lora else 5e-5

    def use_bf16(self, device_type: str) -> bool:
        """Whether to train in bf16 autocast on ``device_type`` (``cuda`` or ``cpu``)."""
        import torch

        if self.bf16 == "auto":
            return device_type == "cuda" and torch.cuda.is_bf16_supported()
        if self.bf16 and device_type == "cuda" and not torch.cuda.is_bf16_supported():
            raise OverseerError("this GPU does not support bf16; use --learner-arg bf16=false")
        return bool(self.bf16)


def _out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and (
        "out of memory" in str(exc) or "DefaultCPUAllocator: can't allocate" in str(exc)
    )


def _oom_error(model: str, cfg: FinetuneConfig) -> OverseerError:
    smaller = max(1, cfg.batch_size // 2)
    return OverseerError(
        f"out of memory fine-tuning {model!r} (batch_size={cfg.batch_size}, lora={cfg.lora}, "
        f"gradient_checkpointing={cfg.gradient_checkpointing}); try --learner-arg batch_size={smaller} "
        f"(with --learner-arg grad_accum={cfg.grad_accum * cfg.batch_size // smaller} to keep the effective batch), "
        "--learner-arg lora=true, or --learner-arg gradient_checkpointing=true"
    )


# --- the model: overseer.models.SequenceClassifier --------------------------------------------------


def _classifier_class() -> type:
    """The torch module class under :class:`~overseer.models.SequenceClassifier` (defined on first use)."""
    return SequenceClassifier.module_class()


def _build_classifier(config: ClassifierConfig, seed: int) -> SequenceClassifier:
    """The classifier one fit trains, on the CPU: the Trainer moves it to its device."""
    return SequenceClassifier.build(config, seed=seed, device="cpu")


def holdout(n: int, eval_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held out) of a random ``eval_frac`` slice for early stopping."""
    if eval_frac <= 0:
        return np.arange(n), np.arange(0)
    n_eval = max(1, round(eval_frac * n))
    if n_eval >= n:
        raise OverseerError(f"eval_frac={eval_frac} leaves no training examples out of {n}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_eval:]), np.sort(order[:n_eval])


@dataclass
class FinetunePredictor:
    """A fine-tuned :class:`~overseer.models.SequenceClassifier`: P(class 1) for any split."""

    learner: FinetuneLearner
    model_name: str
    classifier: SequenceClassifier
    config: FinetuneConfig
    loss_curve: list[float]
    log_history: list[dict[str, float]]
    eval_ids: tuple[str, ...]
    saved_to: Path | None = None

    @property
    def lm(self) -> LoadedModel:
        """The loaded model and tokenizer under the classifier."""
        return self.classifier.lm

    @property
    def model_(self) -> Any:
        """The trained torch module (body, head and the head's input statistics)."""
        return self.classifier.model_

    def logits(self, split: UnlabeledSplit) -> np.ndarray:
        """Raw logits (n, 2) for ``split``, in length-sorted batches of ``config.batch_size``."""
        import torch

        texts, pairs = self.learner._inputs(split)
        try:
            return self.classifier.logits(texts, pairs, batch_size=self.config.batch_size)
        except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
            if not _out_of_memory(exc):
                raise
        free_accelerator_memory()
        raise _oom_error(self.model_name, self.config)

    def predict_proba(self, split: UnlabeledSplit) -> np.ndarray:
        """P(class 1) for each example of ``split``."""
        logits = self.logits(split)
        z = logits[:, 1] - logits[:, 0]
        return 1.0 / (1.0 + np.exp(-z))


@learner("finetune")
class FinetuneLearner(ProbeLearner):
    """Fine-tunes the whole model (or LoRA adapters) with a 2-class head through the HF Trainer.

    Takes the probe learner's arguments (``cache`` supplies the device and, for :meth:`features`,
    the base model's cached activations; ``head`` is probe-only and ignored) plus every
    :class:`FinetuneConfig` field as a keyword argument, or a whole ``config``.
    """

    def __init__(
        self,
        cache: ActivationCache | None = None,
        layers: dict[str, int] | None = None,
        poolings: dict[str, str | None] | None = None,
        pairing: str = "single",
        max_length: int = 512,
        head: dict[str, Any] | None = None,
        progress: Any = None,
        aliases: dict[str, str] | None = None,
        config: FinetuneConfig | None = None,
        **overrides: Any,
    ):
        super().__init__(cache or ActivationCache(), layers, poolings, pairing, max_length, head, progress, aliases)
        if overrides:
            FinetuneConfig.from_kwargs(**overrides)  # unknown or bad values: one clear line, before any work
        base = config or FinetuneConfig()
        self.config = dataclasses.replace(base, **overrides) if overrides else base

    def _train(self, model: str, split: UnlabeledSplit, targets: np.ndarray, loss: str,
               loss_args: dict[str, Any] | None, seed: int) -> FinetunePredictor:
        """Fine-tune ``model`` on ``split`` towards ``targets`` (checked by :meth:`fit`) under ``loss``."""
        import torch

        cfg = self.config
        loss_fn = make_loss(loss, **(loss_args or {}))
        use_cpu = self.cache.device == "cpu" or not torch.cuda.is_available()
        bf16 = cfg.use_bf16("cpu" if use_cpu else "cuda")
        try:
            return self._fit(model, split, targets, loss_fn, seed, use_cpu, bf16)
        except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
            if not _out_of_memory(exc):
                raise
        free_accelerator_memory()  # outside the handler: the traceback no longer pins the failed step's tensors
        raise _oom_error(model, cfg)

    def _inputs(self, split: UnlabeledSplit) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
        """The texts and second texts the classifier reads for ``split`` under this learner's pairing."""
        if self.pairing == "compare" and split.text_pairs is None:
            raise OverseerError(f"compare dataset split {split.name!r} has no text pairs")
        return split.texts, (split.text_pairs if self.pairing != "single" else None)

    def classifier_config(self, model: str, bf16: bool) -> ClassifierConfig:
        """The model-layer classifier this learner fine-tunes for ``model``."""
        cfg = self.config
        return ClassifierConfig(
            model=self.real_model(model),
            pooling=self.pooling(model),
            pairing="compare" if self.pairing == "compare" else "concat",
            max_length=cfg.max_length or self.max_length,
            lora=cfg.lora,
            lora_r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=cfg.target_modules,
            standardize=cfg.standardize,
            # Frozen LoRA bases may sit in bf16; trained weights stay fp32 (bf16 is autocast, not storage).
            dtype="bfloat16" if cfg.lora and bf16 else "float32",
            bf16=bf16,
            gradient_checkpointing=cfg.gradient_checkpointing,
        )

    def _fit(
        self, model: str, split: UnlabeledSplit, targets: np.ndarray, loss_fn: Any, seed: int, use_cpu: bool, bf16: bool
    ) -> FinetunePredictor:
        cfg = self.config
        classifier = _build_classifier(self.classifier_config(model, bf16), seed)
        texts, pairs = self._inputs(split)
        rows = np.stack([1.0 - targets.astype(np.float64), targets.astype(np.float64)], axis=-1).astype(np.float32)
        train_idx, eval_idx = holdout(len(split), cfg.eval_frac, seed)

        def take(values: tuple[str, ...] | None, idx: np.ndarray) -> list[str] | None:
            return None if values is None else [values[i] for i in idx]

        try:
            fit = fit_classifier(
                classifier,
                take(texts, train_idx),
                rows[train_idx],
                loss_fn,
                pairs=take(pairs, train_idx),
                eval_texts=take(texts, eval_idx),
                eval_pairs=take(pairs, eval_idx),
                eval_targets=rows[eval_idx],
                eval_loss_fn=soft_cross_entropy,  # held-out weak labels: plain cross-entropy against them
                lr=cfg.learning_rate,
                head_lr=cfg.head_lr,
                epochs=cfg.epochs,
                batch_size=cfg.batch_size,
                grad_accum=cfg.grad_accum,
                lr_scheduler=cfg.lr_scheduler,
                warmup_ratio=cfg.warmup_ratio,
                weight_decay=cfg.weight_decay,
                eval_steps=cfg.eval_steps,
                early_stopping_patience=cfg.early_stopping_patience,
                seed=seed,
                use_cpu=use_cpu,
            )
        except TrainingDivergedError as exc:
            raise OverseerError(
                f"fine-tuning loss became {exc.value} at step {exc.step} (lr={exc.lr}); "
                "lower it with --learner-arg lr=... or try bf16=false"
            ) from None
        saved = None
        if cfg.save_model:  # LoRA: adapters only; written once, by the main process
            saved = Path(cfg.output_dir) / _fit_name(model, split, targets, seed)
            if fit.is_main_process:
                classifier.save(saved)
        return FinetunePredictor(
            self, model, classifier, cfg, fit.loss_curve, fit.log_history, tuple(split.ids[i] for i in eval_idx), saved
        )


def _fit_name(model: str, split: UnlabeledSplit, targets: np.ndarray, seed: int) -> str:
    """A folder name unique to one fit (student and ceiling share a model and a seed, not targets)."""
    digest = hashlib.sha256(
        repr((model, split.ids, seed)).encode() + np.asarray(targets, dtype=np.float32).tobytes()
    ).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(model).name or model)}-seed{seed}-{digest}"
