"""Fine-tuning learner: full or LoRA fine-tuning of a whole model with a 2-class head.

The probe learner trains heads on frozen activations; this learner trains the transformer itself,
as Burns et al. 2023 did. It plugs in under the same :class:`~overseer.w2s.learners.Learner`
interface (``overseer w2s run --learner finetune --learner-arg lora=true``), so every method runs
with it, and it uses the registered losses unchanged (``step_frac = global_step / max_steps``).

Training goes through :class:`transformers.Trainer`, so one code path serves CPU, one GPU and
several GPUs (``accelerate launch`` or ``torchrun`` around the same command): the Trainer brings
DDP, bf16 autocast and gradient accumulation. Batches are padded per batch (dynamic padding).
No checkpoint is written unless ``save_model`` is set.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import hashlib
import math
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from overseer.data._splits import UnlabeledSplit
from overseer.errors import OverseerError, unknown
from overseer.models import ActivationCache
from overseer.w2s.learners import ProbeLearner, learner
from overseer.w2s.losses import make_loss, soft_cross_entropy

if TYPE_CHECKING:
    import torch

    from overseer.models._load import LoadedModel

SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup")


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyperparameters of one fine-tuning run (each is also a ``--learner-arg KEY=VALUE``).

    The defaults follow the public weak-to-strong reference code (batch 32, 2 epochs, cosine
    schedule, no weight decay) with learning rate 5e-5, its choice for small models.
    """

    lr: float | None = field(
        default=None,
        metadata={"help": "peak AdamW learning rate; None: 5e-5 for full fine-tuning (the reference's), 5e-4 for LoRA"},
    )
    head_lr: float | None = field(
        default=None,
        metadata={"help": "learning rate of the 2-class head; None: the same as lr (the reference code's choice)"},
    )
    standardize: bool = field(
        default=True,
        metadata={"help": "centre and scale the head's input with statistics of the untrained model on up to "
                  "256 training texts (as probes do); false: the reference code's raw head"},
    )
    epochs: float = field(default=2.0, metadata={"help": "passes over the training split"})
    batch_size: int = field(default=32, metadata={"help": "examples per device per optimizer micro-step"})
    grad_accum: int = field(
        default=1, metadata={"help": "micro-steps per optimizer step (effective batch: batch_size x grad_accum x GPUs)"}
    )
    lora: bool = field(default=False, metadata={"help": "train LoRA adapters (peft) and the head, not all weights"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (scale = alpha / r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA input"})
    target_modules: tuple[str, ...] | None = field(
        default=None, metadata={"help": "module names LoRA adapts; None: peft's defaults for the architecture"}
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "recompute activations in the backward pass: less memory, ~30% slower"}
    )
    bf16: bool | str = field(
        default="auto", metadata={"help": "bf16 autocast; 'auto': on when the CUDA device supports it"}
    )
    max_length: int | None = field(
        default=None, metadata={"help": "tokens per text (causal models keep the end); None: the experiment's"}
    )
    warmup_ratio: float = field(default=0.0, metadata={"help": "share of steps with linear learning-rate warm-up"})
    lr_scheduler: str = field(default="cosine", metadata={"help": f"learning-rate schedule: {', '.join(SCHEDULERS)}"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    eval_frac: float = field(
        default=0.0,
        metadata={"help": "share of the (weak-labelled) training split held out for early stopping; 0: none"},
    )
    early_stopping_patience: int = field(
        default=1, metadata={"help": "evaluations without a lower held-out loss before training stops"}
    )
    eval_steps: int | None = field(
        default=None, metadata={"help": "evaluate the held-out slice every N steps; None: after each epoch"}
    )
    save_model: bool = field(
        default=False, metadata={"help": "write the trained weights (LoRA: adapters only) and head to output_dir"}
    )
    output_dir: str = field(default="finetuned", metadata={"help": "where save_model writes, one folder per fit"})

    def __post_init__(self) -> None:
        # Values from the CLI arrive as YAML scalars: "5e-5" is a string to YAML, [q, v] a list.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in {"epochs", "lora_dropout", "warmup_ratio", "weight_decay", "eval_frac"}:
                object.__setattr__(self, f.name, _number(f.name, value, float))
            elif f.name in {"lr", "head_lr"} and value is not None:
                object.__setattr__(self, f.name, _number(f.name, value, float))
            elif f.name in {"batch_size", "grad_accum", "lora_r", "lora_alpha", "early_stopping_patience"}:
                object.__setattr__(self, f.name, _number(f.name, value, int))
            elif f.name in {"max_length", "eval_steps"} and value is not None:
                object.__setattr__(self, f.name, _number(f.name, value, int))
        if isinstance(self.target_modules, str):
            object.__setattr__(self, "target_modules", (self.target_modules,))
        elif self.target_modules is not None:
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
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
        if not isinstance(self.standardize, bool):
            raise OverseerError(f"finetune standardize must be true or false; got {self.standardize!r}")
        if self.bf16 not in (True, False, "auto"):
            raise OverseerError(f"finetune bf16 must be true, false or auto; got {self.bf16!r}")
        if self.lr_scheduler not in SCHEDULERS:
            raise unknown("lr scheduler", self.lr_scheduler, SCHEDULERS)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> FinetuneConfig:
        """Build from ``--learner-arg`` keywords, refusing unknown ones with the list of known ones."""
        known = [f.name for f in dataclasses.fields(cls)]
        extra = sorted(set(kwargs) - set(known))
        if extra:
            raise unknown("finetune option", extra[0], known)
        return cls(**kwargs)

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


def _number(name: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        raise OverseerError(f"finetune {name} must be a number; got {value!r}")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise OverseerError(f"finetune {name} must be a number; got {value!r}") from None
    if kind is int and float(value) != number:
        raise OverseerError(f"finetune {name} must be a whole number; got {value!r}")
    return number


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


def _free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --- the model: a transformer body and a 2-class head on its pooled last hidden state ---------------


@functools.cache
def _classifier_class() -> type:
    """Defined on first use so that importing this module does not import torch."""
    import torch

    from overseer.models import pool

    class SequenceClassifier(torch.nn.Module):
        """A transformer body with a linear 2-class head on its pooled last hidden state.

        Causal bodies are read at the last real token (``pooling="last"``), found from the attention
        mask, and get position ids that count real tokens only: left- and right-padded batches give
        the logits each text gets alone. With a second text (compare datasets), each text is
        scored separately and the logit is the difference of the two scores.
        """

        def __init__(self, body: torch.nn.Module, hidden_size: int, pooling: str, causal: bool):
            super().__init__()
            self.body = body
            self.head = torch.nn.Linear(hidden_size, 2)
            self.pooling = pooling
            self.causal = causal
            # The head reads (pooled - feature_mean) / feature_scale; identity until standardize() sets them.
            self.register_buffer("feature_mean", torch.zeros(hidden_size))
            self.register_buffer("feature_scale", torch.ones(hidden_size))

        def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            """The body's pooled last hidden state (batch, hidden) of one text per row."""
            extra: dict[str, Any] = {}
            if self.causal:
                extra = {"position_ids": (attention_mask.cumsum(-1) - 1).clamp(min=0), "use_cache": False}
            out = self.body(input_ids=input_ids, attention_mask=attention_mask, **extra)
            return pool(out.last_hidden_state, attention_mask, self.pooling)  # (b, d)

        @torch.no_grad()
        def standardize(self, batches: list[dict[str, torch.Tensor]]) -> None:
            """Set the head's input statistics from the untrained body's features on ``batches``.

            Decoder hidden states carry a few huge, nearly constant dimensions (SmolLM2-135M's last token:
            |mean| up to 16 against a median spread of 0.35); a zero head trained with Adam moves every
            weight alike, so those dimensions swamp the signal and training stalls at chance. Centering
            and scaling each dimension, as the probe learner does, removes that.
            """
            was_training = self.training
            self.eval()
            feats = []
            for batch in batches:
                feats.append(self.pooled(batch["input_ids"], batch["attention_mask"]).float())
                if "input_ids_b" in batch:
                    feats.append(self.pooled(batch["input_ids_b"], batch["attention_mask_b"]).float())
            x = torch.cat(feats)
            self.feature_mean.copy_(x.mean(0))
            self.feature_scale.copy_(x.std(0, unbiased=False) + 1e-3)
            self.train(was_training)

        def score(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            """Logits (batch, 2) of one text per row."""
            pooled = self.pooled(input_ids, attention_mask).to(self.head.weight.dtype)
            return self.head((pooled - self.feature_mean) / self.feature_scale)  # (b, 2)

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            input_ids_b: torch.Tensor | None = None,
            attention_mask_b: torch.Tensor | None = None,
            labels: torch.Tensor | None = None,
        ) -> torch.Tensor:
            """Logits (batch, 2); ``labels`` is accepted so the Trainer knows the label column."""
            logits = self.score(input_ids, attention_mask)
            if input_ids_b is not None:
                logits = logits - self.score(input_ids_b, attention_mask_b)
            return logits

    return SequenceClassifier


def _build_classifier(lm: LoadedModel, pooling: str, cfg: FinetuneConfig, seed: int) -> torch.nn.Module:
    """Head on ``lm``'s body; with LoRA only the adapters and the head are trainable."""
    import torch
    import transformers

    body = lm.backbone
    if getattr(body, "pooler", None) is not None:
        body.pooler = None  # BERT's pooler is unused here; unused parameters stall DDP
    if cfg.gradient_checkpointing:
        if not getattr(body, "supports_gradient_checkpointing", False):
            raise OverseerError(f"{type(body).__name__} does not support gradient checkpointing; drop that flag")
        # Non-reentrant checkpointing works with frozen inputs (LoRA) and with DDP.
        if hasattr(body, "activation_checkpointing_enable"):  # transformers >= 5.x; the older name is deprecated
            body.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            body.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    transformers.set_seed(seed)  # the head and the adapters start from the same weights for a seed
    if cfg.lora:
        from peft import LoraConfig, get_peft_model

        lora_config = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=list(cfg.target_modules) if cfg.target_modules else None,
            bias="none",
        )
        try:
            body = get_peft_model(body, lora_config)
        except ValueError as exc:
            first = str(exc).strip().splitlines()[0]
            raise OverseerError(
                f"cannot add LoRA adapters to {lm.spec.name!r}: {first}; name the layers with "
                "--learner-arg 'target_modules=[q_proj,v_proj]'"
            ) from exc
    model = _classifier_class()(body, int(lm.model.config.hidden_size), pooling, lm.kind == "causal")
    # A zero head starts every prediction at P = 0.5, as the reference code does (its score layer is
    # zero-initialised): a random head on un-normalised hidden states starts confidently wrong.
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)
    model.head.float()
    return model


# --- data: tokenized once, padded per batch -------------------------------------------------------


def _encode(lm: LoadedModel, texts: tuple[str, ...], pairs: tuple[str, ...] | None, max_length: int) -> list[list[int]]:
    """Token ids; causal models join pairs with a newline and drop over-long texts' beginning."""
    tok = lm.tokenizer
    if pairs is not None and lm.kind == "causal":
        texts, pairs = tuple(f"{a}\n{b}" for a, b in zip(texts, pairs, strict=True)), None
    saved = tok.truncation_side
    tok.truncation_side = "left" if lm.kind == "causal" else saved
    try:
        return tok(list(texts), list(pairs) if pairs is not None else None, truncation=True, max_length=max_length)[
            "input_ids"
        ]
    finally:
        tok.truncation_side = saved


def _examples(lm: LoadedModel, split: UnlabeledSplit, pairing: str, max_length: int) -> list[dict[str, Any]]:
    """One dict per example: ``input_ids`` (and ``input_ids_b`` for compare datasets)."""
    if pairing == "compare":
        if split.text_pairs is None:
            raise OverseerError(f"compare dataset split {split.name!r} has no text pairs")
        a = _encode(lm, split.texts, None, max_length)
        b = _encode(lm, split.text_pairs, None, max_length)
        return [{"input_ids": x, "input_ids_b": y} for x, y in zip(a, b, strict=True)]
    pairs = split.text_pairs if pairing == "concat" else None
    return [{"input_ids": ids} for ids in _encode(lm, split.texts, pairs, max_length)]


def _sorted_batches(
    rows: list[dict[str, Any]], collate: Any, batch_size: int, device: Any
) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """(row indices, batch on ``device``), longest rows first: least padding, and out of memory early if at all."""
    lengths = [len(r["input_ids"]) + len(r.get("input_ids_b", ())) for r in rows]
    order = np.argsort(lengths, kind="stable")[::-1]
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield idx, {k: v.to(device) for k, v in collate([rows[i] for i in idx]).items()}


class _Collator:
    """Pads each side of a batch to its longest text (:class:`DataCollatorWithPadding`) and stacks targets."""

    def __init__(self, tokenizer: Any):
        from transformers import DataCollatorWithPadding

        self.pad = DataCollatorWithPadding(tokenizer, return_tensors="pt")

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        batch = dict(self.pad([{"input_ids": r["input_ids"]} for r in rows]))
        if "input_ids_b" in rows[0]:
            other = self.pad([{"input_ids": r["input_ids_b"]} for r in rows])
            batch["input_ids_b"], batch["attention_mask_b"] = other["input_ids"], other["attention_mask"]
        if "labels" in rows[0]:
            batch["labels"] = torch.tensor(np.array([r["labels"] for r in rows]), dtype=torch.float32)  # (b, 2)
        return batch


def holdout(n: int, eval_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held out) of a random ``eval_frac`` slice for early stopping."""
    if eval_frac <= 0:
        return np.arange(n), np.arange(0)
    n_eval = max(1, round(eval_frac * n))
    if n_eval >= n:
        raise OverseerError(f"eval_frac={eval_frac} leaves no training examples out of {n}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_eval:]), np.sort(order[:n_eval])


# --- training ---------------------------------------------------------------------------------------


@functools.cache
def _trainer_classes() -> tuple[type, type]:
    """The Trainer subclass and the early-stopping callback, defined on first use (lazy imports)."""
    from transformers import Trainer, TrainerCallback

    class WeakLabelTrainer(Trainer):
        """A Trainer whose loss is a registered weak-to-strong loss on (batch, 2) logits and targets.

        While training, the loss gets ``step_frac = global_step / max_steps``; evaluation (the
        held-out weak labels of early stopping) scores plain cross-entropy against those labels.
        """

        loss_is_scaled_for_ga = False  # our losses are per-batch means: the Trainer divides by grad_accum

        def __init__(self, *args: Any, loss_fn: Any, head_lr: float | None = None, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.loss_fn = loss_fn
            self.head_lr = head_lr
            self.loss_curve: list[float] = []

        def create_optimizer(self, model: Any = None) -> Any:
            """The Trainer's AdamW, with the head in its own parameter group when ``head_lr`` is set."""
            if self.head_lr is None or self.optimizer is not None:  # later calls return the one already built
                return super().create_optimizer(model)
            optimizer = super().create_optimizer(model)
            head = {id(p) for p in self.model.head.parameters()}
            for group in optimizer.param_groups:
                group["params"] = [p for p in group["params"] if id(p) not in head]
            optimizer.add_param_group({"params": list(self.model.head.parameters()), "lr": self.head_lr,
                                       "weight_decay": 0.0})
            return optimizer

        def compute_loss(
            self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            targets = inputs.pop("labels")  # (b, 2) soft or hard weak labels
            logits = model(**inputs)  # (b, 2)
            if model.training:
                step_frac = self.state.global_step / max(1, self.state.max_steps)
                loss = self.loss_fn(logits, targets, step_frac)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise OverseerError(
                        f"fine-tuning loss became {value} at step {self.state.global_step} "
                        f"(lr={self.args.learning_rate}); lower it with --learner-arg lr=... or try bf16=false"
                    )
                self.loss_curve.append(value)
            else:
                loss = soft_cross_entropy(logits, targets)
            return (loss, {"logits": logits}) if return_outputs else loss

    class KeepBest(TrainerCallback):
        """Early stopping on the held-out weak labels; keeps the best trainable weights in memory.

        Unlike :class:`transformers.EarlyStoppingCallback` it needs no checkpoints on disk.
        """

        def __init__(self, model: torch.nn.Module, patience: int):
            self.model = model
            self.patience = patience
            self.best = math.inf
            self.bad = 0
            self.best_state: dict[str, torch.Tensor] | None = None
            self.stopped_at: int | None = None

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float], **kwargs: Any) -> None:
            loss = metrics["eval_loss"]
            if loss < self.best:
                self.best, self.bad = loss, 0
                self.best_state = {
                    k: p.detach().to("cpu", copy=True) for k, p in self.model.named_parameters() if p.requires_grad
                }
            else:
                self.bad += 1
                if self.bad >= self.patience:
                    control.should_training_stop = True
                    self.stopped_at = state.global_step

        def restore(self) -> None:
            """Load the best weights seen back into the model."""
            if self.best_state is not None:
                self.model.load_state_dict(self.best_state, strict=False)

    return WeakLabelTrainer, KeepBest


@dataclass
class FinetunePredictor:
    """A fine-tuned model: P(class 1) for any split, computed in length-sorted batches."""

    learner: FinetuneLearner
    model_name: str
    lm: LoadedModel
    model_: Any
    config: FinetuneConfig
    bf16: bool
    loss_curve: list[float]
    log_history: list[dict[str, float]]
    eval_ids: tuple[str, ...]
    saved_to: Path | None = None

    def logits(self, split: UnlabeledSplit) -> np.ndarray:
        """Raw logits (n, 2) for ``split``."""
        import torch

        max_length = self.config.max_length or self.learner.max_length
        rows = _examples(self.lm, split, self.learner.pairing, max_length)
        device = next(self.model_.parameters()).device
        out = np.empty((len(rows), 2), dtype=np.float32)
        self.model_.eval()
        try:
            with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=self.bf16):
                for idx, batch in _sorted_batches(rows, _Collator(self.lm.tokenizer), self.config.batch_size, device):
                    out[idx] = self.model_(**batch).float().cpu().numpy()
            return out
        except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
            if not _out_of_memory(exc):
                raise
        _free_memory()
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
        config: FinetuneConfig | None = None,
        **overrides: Any,
    ):
        super().__init__(cache or ActivationCache(), layers, poolings, pairing, max_length, head, progress)
        if overrides:
            FinetuneConfig.from_kwargs(**overrides)  # unknown or bad values: one clear line, before any work
        base = config or FinetuneConfig()
        self.config = dataclasses.replace(base, **overrides) if overrides else base

    def fit(
        self,
        model: str,
        split: UnlabeledSplit,
        targets: np.ndarray,
        loss: str = "xent",
        loss_args: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> FinetunePredictor:
        """Fine-tune ``model`` on ``split`` towards ``targets`` (hard or soft P(class 1)) under ``loss``."""
        import torch

        targets = np.asarray(targets, dtype=np.float32)
        if targets.shape != (len(split),) or not np.all((targets >= 0) & (targets <= 1)):
            raise OverseerError(f"targets must be {len(split)} probabilities in [0, 1]; got shape {targets.shape}")
        cfg = self.config
        loss_fn = make_loss(loss, **(loss_args or {}))
        use_cpu = self.cache.device == "cpu" or not torch.cuda.is_available()
        bf16 = cfg.use_bf16("cpu" if use_cpu else "cuda")
        try:
            return self._fit(model, split, targets, loss_fn, seed, use_cpu, bf16)
        except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
            if not _out_of_memory(exc):
                raise
        _free_memory()  # outside the handler: the traceback no longer pins the failed step's tensors
        raise _oom_error(model, cfg)

    def _fit(
        self, model: str, split: UnlabeledSplit, targets: np.ndarray, loss_fn: Any, seed: int, use_cpu: bool, bf16: bool
    ) -> FinetunePredictor:
        from transformers import PrinterCallback, TrainingArguments

        from overseer.models import load_model

        cfg = self.config
        # Frozen LoRA bases may sit in bf16; trained weights stay fp32 (bf16 is autocast, not storage).
        lm = load_model(model, device="cpu", dtype="bfloat16" if cfg.lora and bf16 else "float32")
        net = _build_classifier(lm, self.pooling(model), cfg, seed)

        rows = _examples(lm, split, self.pairing, cfg.max_length or self.max_length)
        for row, y in zip(rows, targets, strict=True):
            row["labels"] = [1.0 - float(y), float(y)]
        train_idx, eval_idx = holdout(len(rows), cfg.eval_frac, seed)
        evaluate = len(eval_idx) > 0

        out_dir = Path(cfg.output_dir) / _fit_name(model, split, targets, seed) if cfg.save_model else None
        with tempfile.TemporaryDirectory(prefix="overseer-finetune-") as scratch:
            args = TrainingArguments(
                output_dir=str(out_dir or scratch),
                per_device_train_batch_size=cfg.batch_size,
                per_device_eval_batch_size=cfg.batch_size,
                gradient_accumulation_steps=cfg.grad_accum,
                num_train_epochs=cfg.epochs,
                learning_rate=cfg.learning_rate,
                weight_decay=cfg.weight_decay,
                warmup_steps=cfg.warmup_ratio,  # a float below 1 is a share of the steps
                lr_scheduler_type=cfg.lr_scheduler,
                bf16=bf16,
                use_cpu=use_cpu,
                seed=seed,
                eval_strategy=("steps" if cfg.eval_steps else "epoch") if evaluate else "no",
                eval_steps=cfg.eval_steps,
                save_strategy="no",
                logging_strategy="epoch",
                report_to=[],
                remove_unused_columns=False,
                label_names=["labels"],
                disable_tqdm=not sys.stderr.isatty(),
                dataloader_pin_memory=not use_cpu,
                ddp_find_unused_parameters=False,  # every parameter that trains is used in every step
            )
            if cfg.standardize:
                net.to(args.device)
                _standardize(net, [rows[i] for i in train_idx], _Collator(lm.tokenizer), cfg.batch_size, seed, bf16)
            trainer_cls, keep_best_cls = _trainer_classes()
            keep_best = keep_best_cls(net, cfg.early_stopping_patience)
            trainer = trainer_cls(
                model=net,
                args=args,
                train_dataset=[rows[i] for i in train_idx],
                eval_dataset=[rows[i] for i in eval_idx] if evaluate else None,
                data_collator=_Collator(lm.tokenizer),
                callbacks=[keep_best] if evaluate else None,
                loss_fn=loss_fn,
                head_lr=cfg.head_lr,
            )
            trainer.remove_callback(PrinterCallback)  # quiet: progress bar on a terminal only
            trainer.train()
            keep_best.restore()
            saved = self._save(trainer, net, lm, out_dir) if out_dir is not None else None
            # Training state is not needed for prediction: drop optimizer moments and gradients now.
            loss_curve, history = trainer.loss_curve, list(trainer.state.log_history)
            trainer.accelerator.free_memory()
            net.zero_grad(set_to_none=True)
            del trainer
            _free_memory()
        return FinetunePredictor(
            self, model, lm, net, cfg, bf16, loss_curve, history, tuple(split.ids[i] for i in eval_idx), saved
        )

    @staticmethod
    def _save(trainer: Any, net: Any, lm: LoadedModel, out_dir: Path) -> Path:
        """Body (LoRA: adapters only), head and tokenizer, written once by the main process."""
        from safetensors.torch import save_file

        if trainer.is_world_process_zero():
            out_dir.mkdir(parents=True, exist_ok=True)
            net.body.save_pretrained(out_dir / "body")
            head = {**net.head.state_dict(), "feature_mean": net.feature_mean, "feature_scale": net.feature_scale}
            save_file({k: v.detach().cpu().contiguous() for k, v in head.items()}, str(out_dir / "head.safetensors"))
            lm.tokenizer.save_pretrained(out_dir / "body")
        return out_dir


def _standardize(net: Any, rows: list[dict[str, Any]], collate: _Collator, batch_size: int, seed: int,
                 bf16: bool, n_max: int = 256) -> None:
    """Set ``net``'s head-input statistics from up to ``n_max`` random training rows."""
    import torch

    pick = np.random.default_rng(seed).permutation(len(rows))[:n_max]
    device = next(net.parameters()).device
    batches = [batch for _, batch in _sorted_batches([rows[i] for i in pick], collate, batch_size, device)]
    with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
        net.standardize(batches)


def _fit_name(model: str, split: UnlabeledSplit, targets: np.ndarray, seed: int) -> str:
    """A folder name unique to one fit (student and ceiling share a model and a seed, not targets)."""
    digest = hashlib.sha256(
        repr((model, split.ids, seed)).encode() + np.asarray(targets, dtype=np.float32).tobytes()
    ).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(model).name or model)}-seed{seed}-{digest}"
