"""A sequence classifier: a transformer body with a 2-class head, as one object to build, train, save and load.

:class:`SequenceClassifier` wraps any model :func:`~overseer.models.load_model` accepts. The head reads
the body's last hidden state at the last real token (causal models) or its mean over real tokens
(encoders), centred and scaled with statistics of the untrained model on the training texts. Every
pillar that needs a learned scorer (a weak-to-strong student, a verifier, a judge) uses it:

>>> clf = SequenceClassifier.build(ClassifierConfig("smollm2-135m-l4", lora=True), seed=0)  # doctest: +SKIP
>>> fit_classifier(clf, texts, np.stack([1 - y, y], -1), soft_xent, epochs=1)  # doctest: +SKIP
>>> clf.save("runs/verifier"); SequenceClassifier.load("runs/verifier").predict_proba(texts)  # doctest: +SKIP

:func:`fit_classifier` trains it through :class:`transformers.Trainer` (CPU, one GPU or DDP under
``torchrun``) with any loss ``(logits, targets, step_frac) -> scalar``: soft-label cross-entropy for a
student, Bradley-Terry on compared pairs for a verifier. :meth:`SequenceClassifier.reward_function`
turns a classifier into a TRL reward function.

A saved classifier is a directory written atomically: ``classifier.json`` (format version, the
:class:`ClassifierConfig` that built it, seed), ``head.safetensors`` (head and its input statistics),
the body's weights (``body.safetensors``, or with LoRA only ``adapter_model.safetensors`` and
``adapter_config.json``) and the tokenizer. Loading rebuilds the model from the config's base model
and overwrites every trained weight, so the base weights must still be available.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import math
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from overseer._storage import publish_directory
from overseer.errors import OverseerError, unknown
from overseer.models._features import POOLINGS, pool
from overseer.models._lm import Chat, format_chat
from overseer.models._load import LADDER, LoadedModel, load_model

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
DTYPES = ("float32", "bfloat16", "float16")
REWARD_OUTPUTS = ("logit", "probability")
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup")

#: ``loss_fn(logits (batch, 2), targets (batch, ...), step_frac in [0, 1]) -> scalar tensor``.
LossFn = Callable[["torch.Tensor", "torch.Tensor", float], "torch.Tensor"]


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything needed to rebuild a :class:`SequenceClassifier`; saved beside its weights."""

    model: str = field(metadata={"help": "base model, any name load_model accepts (short name, hub id, dir, .gguf)"})
    num_layers: int | None = field(default=None, metadata={"help": "keep only the first N blocks; None: all"})
    pooling: str | None = field(
        default=None,
        metadata={"help": f"how the head reads the body ({', '.join(POOLINGS)}); None: the ladder rung's, "
                  "else last for causal models and mean for encoders"},
    )
    pairing: str = field(
        default="concat",
        metadata={"help": "how a second text is read: concat (encoders: sentence pair; causal: joined by a "
                  "newline) or compare (each text scored alone; logits are the difference)"},
    )
    max_length: int = field(default=512, metadata={"help": "tokens per text; causal models keep the end"})
    lora: bool = field(default=False, metadata={"help": "LoRA adapters (peft) and the head train; the body is frozen"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (scale = alpha / r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA input"})
    target_modules: tuple[str, ...] | None = field(
        default=None, metadata={"help": "module names LoRA adapts; None: peft's defaults for the architecture"}
    )
    standardize: bool = field(
        default=True,
        metadata={"help": "centre and scale the head's input with the untrained model's statistics on up to 256 "
                  "training texts (set by the first fit_classifier)"},
    )
    dtype: str = field(default="float32", metadata={"help": f"storage dtype of the body: {', '.join(DTYPES)}"})
    bf16: bool = field(default=False, metadata={"help": "bf16 autocast in forward passes (training and scoring)"})
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "recompute activations in the backward pass: less memory, ~30% slower"}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "allow the hub repo's own Python code"})

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise OverseerError(f"classifier model must be a model name or path; got {self.model!r}")
        if isinstance(self.target_modules, str):
            object.__setattr__(self, "target_modules", (self.target_modules,))
        elif self.target_modules is not None:
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        for name in ("num_layers", "max_length", "lora_r", "lora_alpha"):
            value = getattr(self, name)
            if name == "num_layers" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise OverseerError(f"classifier {name} must be a positive whole number; got {value!r}")
        if self.pooling is not None and self.pooling not in POOLINGS:
            raise unknown("pooling", self.pooling, POOLINGS)
        if self.pairing not in PAIRINGS:
            raise unknown("classifier pairing", self.pairing, PAIRINGS)
        if self.dtype not in DTYPES:
            raise unknown("classifier dtype", self.dtype, DTYPES)
        if isinstance(self.lora_dropout, bool) or not isinstance(self.lora_dropout, int | float) or not (
            0 <= self.lora_dropout < 1
        ):
            raise OverseerError(f"classifier lora_dropout must be in [0, 1); got {self.lora_dropout!r}")
        for name in ("lora", "standardize", "bf16", "gradient_checkpointing", "trust_remote_code"):
            if not isinstance(getattr(self, name), bool):
                raise OverseerError(f"classifier {name} must be true or false; got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready values."""
        out = dataclasses.asdict(self)
        out["target_modules"] = list(self.target_modules) if self.target_modules is not None else None
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ClassifierConfig:
        """Rebuild from :meth:`to_dict` output, refusing unknown keys with the list of known ones."""
        known = [f.name for f in dataclasses.fields(cls)]
        extra = sorted(set(values) - set(known))
        if extra:
            raise unknown("classifier config field", extra[0], known)
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


# --- the torch module: body, pooling, standardised linear head -------------------------------------


@functools.cache
def _module_class() -> type:
    """Defined on first use so that importing overseer.models does not import torch."""
    import torch

    class ClassifierModule(torch.nn.Module):
        """A transformer body with a linear 2-class head on its pooled last hidden state.

        Causal bodies are read at the last real token (``pooling="last"``), found from the attention
        mask, and get position ids that count real tokens only: left- and right-padded batches give
        the logits each text gets alone. With a second text (``pairing="compare"``), each text is
        scored separately and the logits are the difference of the two scores.
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
            """Set the head's input statistics from the (untrained) body's features on ``batches``.

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
            x = torch.cat(feats)  # (n, d)
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
            both: bool = False,
        ) -> torch.Tensor:
            """Logits (batch, 2); ``labels`` is accepted so the Trainer knows the label column.

            With a second text and ``both``, the two texts' own logits side by side (batch, 4)
            instead of their difference (for a loss that also reads each score).
            """
            logits = self.score(input_ids, attention_mask)
            if input_ids_b is not None:
                other = self.score(input_ids_b, attention_mask_b)
                return torch.cat([logits, other], dim=-1) if both else logits - other
            return logits

    return ClassifierModule


def _build_module(lm: LoadedModel, config: ClassifierConfig, seed: int) -> torch.nn.Module:
    """Head on ``lm``'s body; with LoRA only the adapters and the head are trainable."""
    import torch
    import transformers

    body = lm.backbone
    if getattr(body, "pooler", None) is not None:
        body.pooler = None  # BERT's pooler is unused here; unused parameters stall DDP
    if config.gradient_checkpointing:
        if not getattr(body, "supports_gradient_checkpointing", False):
            raise OverseerError(
                f"{type(body).__name__} does not support gradient checkpointing; set gradient_checkpointing off"
            )
        # Non-reentrant checkpointing works with frozen inputs (LoRA) and with DDP.
        if hasattr(body, "activation_checkpointing_enable"):  # transformers >= 5.x; the older name is deprecated
            body.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            body.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    transformers.set_seed(seed)  # the head and the adapters start from the same weights for a seed
    if config.lora:
        from peft import LoraConfig, get_peft_model

        lora_config = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.target_modules) if config.target_modules else None,
            bias="none",
        )
        try:
            body = get_peft_model(body, lora_config)
        except ValueError as exc:
            first = str(exc).strip().splitlines()[0]
            raise OverseerError(
                f"cannot add LoRA adapters to {lm.spec.name!r}: {first}; name the layers to adapt with "
                "target_modules (e.g. [q_proj, v_proj])"
            ) from exc
    assert config.pooling is not None  # resolved by SequenceClassifier.build
    module = _module_class()(body, int(lm.model.config.hidden_size), config.pooling, lm.kind == "causal")
    # A zero head starts every prediction at P = 0.5, as the weak-to-strong reference code does (its score
    # layer is zero-initialised): a random head on un-normalised hidden states starts confidently wrong.
    torch.nn.init.zeros_(module.head.weight)
    torch.nn.init.zeros_(module.head.bias)
    module.head.float()
    return module.to(lm.device)


# --- data: tokenized once, padded per batch ---------------------------------------------------------


def _sorted_batches(
    rows: list[dict[str, Any]], collate: Callable[[list[dict[str, Any]]], dict[str, Any]], batch_size: int, device: Any
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
            labels = np.stack([np.asarray(r["labels"]) for r in rows])  # (b, ...)
            floating = np.issubdtype(labels.dtype, np.floating)
            batch["labels"] = torch.as_tensor(labels, dtype=torch.float32 if floating else None)
        return batch


def _text_list(name: str, values: Sequence[str] | None) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        raise OverseerError(f"{name} must be a list of strings, not one string; wrap it as [{name[:-1]}]")
    values = list(values)
    bad = next((v for v in values if not isinstance(v, str)), None)
    if bad is not None:
        raise OverseerError(f"{name} must all be strings; got {type(bad).__name__} {bad!r:.60}")
    return values


def _message_text(content: Any) -> str:
    """A chat message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    raise OverseerError(f"chat message content must be a string or a list of parts; got {type(content).__name__}")


def _is_chat(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and all(isinstance(m, Mapping) for m in value)


# --- the classifier ---------------------------------------------------------------------------------


class SequenceClassifier:
    """A transformer with a 2-class head: scores, probabilities, training, saving, TRL rewards.

    Build one with :meth:`build` (fresh head; LoRA adapters initialised from ``seed``) or :meth:`load`
    (a directory written by :meth:`save`), train it with :func:`fit_classifier`.

    Attributes:
        config: the :class:`ClassifierConfig` that built it, with ``pooling`` resolved.
        lm: the loaded base model and its tokenizer.
        model_: the torch module (``body``, ``head``, ``feature_mean``, ``feature_scale``).
        seed: the seed the head and adapters were initialised with.
        standardized: whether the head's input statistics have been set (by the first fit).
    """

    def __init__(
        self, config: ClassifierConfig, lm: LoadedModel, model_: Any, seed: int = 0, standardized: bool = False
    ):
        self.config = config
        self.lm = lm
        self.model_ = model_
        self.seed = seed
        self.standardized = standardized

    def __repr__(self) -> str:
        return f"SequenceClassifier({self.config!r}, seed={self.seed})"

    @staticmethod
    def module_class() -> type:
        """The :class:`torch.nn.Module` class of :attr:`model_` (defined on first use)."""
        return _module_class()

    @classmethod
    def build(cls, config: ClassifierConfig, seed: int = 0, device: str | None = None) -> SequenceClassifier:
        """Load ``config.model`` and put a zero-initialised head on it.

        Args:
            config: the classifier's settings.
            seed: seeds torch, numpy and Python (``transformers.set_seed``) before the LoRA adapters
                and head are created, so a seed always gives the same starting weights.
            device: ``cpu``, ``cuda``, ``cuda:1``...; default: CUDA when available, else CPU.
        """
        lm = load_model(
            config.model, num_layers=config.num_layers, device=device, dtype=config.dtype,
            trust_remote_code=config.trust_remote_code,
        )
        if config.pooling is None:
            pooling = LADDER[config.model].pooling if config.model in LADDER else (
                "last" if lm.kind == "causal" else "mean"
            )
            config = dataclasses.replace(config, pooling=pooling)
        return cls(config, lm, _build_module(lm, config, seed), seed)

    # -- inference ---------------------------------------------------------------------------------

    @property
    def tokenizer(self) -> Any:
        """The tokenizer texts are encoded with."""
        return self.lm.tokenizer

    @property
    def device(self) -> torch.device:
        """The device holding the classifier's weights."""
        return next(self.model_.parameters()).device

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        """The module's parameters (as :meth:`torch.nn.Module.parameters`)."""
        return self.model_.parameters()

    def named_parameters(self) -> Iterator[tuple[str, torch.nn.Parameter]]:
        """The module's named parameters (as :meth:`torch.nn.Module.named_parameters`)."""
        return self.model_.named_parameters()

    def to(self, device: str | torch.device) -> SequenceClassifier:
        """Move the weights to ``device``; returns self."""
        self.model_.to(device)
        return self

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Token ids, one dict per text: ``input_ids`` (and ``input_ids_b`` when ``pairing="compare"``).

        Causal models join a pair with a newline (``concat``) and drop an over-long text's beginning.
        """
        texts = _text_list("texts", texts)
        pairs = _text_list("pairs", pairs)
        if pairs is not None and len(pairs) != len(texts):
            raise OverseerError(f"pairs must match texts one to one; got {len(pairs)} pairs for {len(texts)} texts")
        if pairs is not None and self.config.pairing == "compare":
            a, b = self._encode(texts, None), self._encode(pairs, None)
            return [{"input_ids": x, "input_ids_b": y} for x, y in zip(a, b, strict=True)]
        return [{"input_ids": ids} for ids in self._encode(texts, pairs)]

    def _encode(self, texts: list[str], pairs: list[str] | None) -> list[list[int]]:
        if not texts:
            return []
        tok = self.lm.tokenizer
        if pairs is not None and self.lm.kind == "causal":
            texts, pairs = [f"{a}\n{b}" for a, b in zip(texts, pairs, strict=True)], None
        saved = tok.truncation_side
        tok.truncation_side = "left" if self.lm.kind == "causal" else saved
        try:
            return tok(texts, pairs, truncation=True, max_length=self.config.max_length)["input_ids"]
        finally:
            tok.truncation_side = saved

    def logits(self, texts: Sequence[str], pairs: Sequence[str] | None = None, batch_size: int = 32) -> np.ndarray:
        """Raw head logits (n, 2) as float32, computed in length-sorted batches of ``batch_size``."""
        return self.logits_of_rows(self.encode(texts, pairs), batch_size)

    def logits_of_rows(self, rows: list[dict[str, Any]], batch_size: int = 32) -> np.ndarray:
        """:meth:`logits` of rows already made by :meth:`encode`."""
        import torch

        if batch_size <= 0:
            raise OverseerError(f"batch_size must be positive; got {batch_size}")
        device = self.device
        out = np.empty((len(rows), 2), dtype=np.float32)
        self.model_.eval()
        collate = _Collator(self.lm.tokenizer)
        with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=self.config.bf16):
            for idx, batch in _sorted_batches(rows, collate, batch_size, device):
                out[idx] = self.model_(**batch).float().cpu().numpy()
        return out

    def scores(self, texts: Sequence[str], pairs: Sequence[str] | None = None, batch_size: int = 32) -> np.ndarray:
        """Log-odds of class 1 (``logit[1] - logit[0]``), shape (n,): ``predict_proba == sigmoid(scores)``."""
        logits = self.logits(texts, pairs, batch_size)
        return logits[:, 1] - logits[:, 0]

    def predict_proba(
        self, texts: Sequence[str], pairs: Sequence[str] | None = None, batch_size: int = 32
    ) -> np.ndarray:
        """P(class 1) for each text, shape (n,)."""
        z = self.scores(texts, pairs, batch_size)
        return 1.0 / (1.0 + np.exp(-z))

    # -- head statistics -----------------------------------------------------------------------------

    def standardize(
        self, texts: Sequence[str], pairs: Sequence[str] | None = None, batch_size: int = 32, seed: int = 0,
        n_max: int = 256,
    ) -> None:
        """Set the head's input statistics from the current body's features on up to ``n_max`` random texts."""
        self.standardize_rows(self.encode(texts, pairs), batch_size, seed, n_max)

    def standardize_rows(self, rows: list[dict[str, Any]], batch_size: int = 32, seed: int = 0,
                         n_max: int = 256) -> None:
        """:meth:`standardize` on rows already made by :meth:`encode`."""
        import torch

        if not rows:
            raise OverseerError("cannot standardize the classifier head on no texts")
        pick = np.random.default_rng(seed).permutation(len(rows))[:n_max]
        device = self.device
        collate = _Collator(self.lm.tokenizer)
        batches = [batch for _, batch in _sorted_batches([rows[i] for i in pick], collate, batch_size, device)]
        with torch.autocast(device.type, torch.bfloat16, enabled=self.config.bf16):
            self.model_.standardize(batches)
        self.standardized = True

    # -- TRL reward ------------------------------------------------------------------------------------

    def conversation_text(self, prompt: str | Sequence[Mapping[str, Any]], completion: Any) -> str:
        """The text scored for one prompt and completion, either as a string or as chat messages.

        Strings are concatenated (TRL's standard format: the completion continues the prompt). Chat
        prompts are rendered with the tokenizer's chat template (the Human/Assistant format without one)
        and the completion's text follows as the assistant's answer.
        """
        answer = completion
        if _is_chat(completion):
            answer = "".join(_message_text(m.get("content", "")) for m in completion)
        if not isinstance(answer, str):
            kind = type(answer).__name__
            raise OverseerError(f"a completion must be a string or a list of chat messages; got {kind}")
        if isinstance(prompt, str):
            return prompt + answer
        if not _is_chat(prompt):
            raise OverseerError(f"a prompt must be a string or a list of chat messages; got {type(prompt).__name__}")
        messages = [{"role": m.get("role", ""), "content": _message_text(m.get("content", ""))} for m in prompt]
        return format_chat(self.lm.tokenizer, Chat.of(messages, assistant_prefix=answer))

    def reward_function(
        self, output: str = "logit", batch_size: int = 32, name: str | None = None
    ) -> Callable[..., list[float]]:
        """A TRL reward function ``(prompts, completions, **columns) -> list[float]`` scoring with this classifier.

        Args:
            output: ``logit`` (log-odds of class 1, unbounded) or ``probability`` (P(class 1) in [0, 1]).
            batch_size: texts per forward pass.
            name: the function's ``__name__``, which TRL logs rewards under; default ``classifier_<output>``.

        Prompts and completions may be strings or lists of chat messages (see :meth:`conversation_text`);
        other dataset columns TRL passes are ignored. Works outside a trainer too.
        """
        if output not in REWARD_OUTPUTS:
            raise unknown("reward output", output, REWARD_OUTPUTS)
        if batch_size <= 0:
            raise OverseerError(f"batch_size must be positive; got {batch_size}")

        def reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
            if len(prompts) != len(completions):
                raise OverseerError(
                    f"reward needs one prompt per completion; got {len(prompts)} prompts and "
                    f"{len(completions)} completions"
                )
            texts = [self.conversation_text(p, c) for p, c in zip(prompts, completions, strict=True)]
            values = self.scores(texts, batch_size=batch_size) if output == "logit" else self.predict_proba(
                texts, batch_size=batch_size
            )
            return [float(v) for v in values]

        reward.__name__ = reward.__qualname__ = name or f"classifier_{output}"
        reward.__doc__ = f"{output} of class 1 from {self!r} for each prompt + completion."
        return reward

    # -- saving and loading -------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the classifier to directory ``path`` atomically (a temporary directory, then a rename).

        An existing directory is replaced only if it is empty or holds a saved classifier.
        """
        path = Path(path)
        if path.exists() and not (path.is_dir() and ((path / CONFIG_FILE).is_file() or not any(path.iterdir()))):
            raise OverseerError(f"cannot save a classifier to {path}: it exists and is not a saved classifier; "
                                "choose a new directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        try:
            self._write(tmp)
            publish_directory(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    def _write(self, out: Path) -> None:
        from safetensors.torch import save_file, save_model

        from overseer import __version__

        module = self.model_
        head = {
            "head.weight": module.head.weight, "head.bias": module.head.bias,
            "feature_mean": module.feature_mean, "feature_scale": module.feature_scale,
        }
        save_file({k: v.detach().cpu().contiguous() for k, v in head.items()}, str(out / HEAD_FILE))
        if self.config.lora:
            from peft import get_peft_model_state_dict

            adapter = get_peft_model_state_dict(module.body)
            save_file({k: v.detach().cpu().contiguous() for k, v in adapter.items()}, str(out / ADAPTER_FILE))
            module.body.peft_config["default"].save_pretrained(str(out))
        else:
            save_model(module.body, str(out / BODY_FILE))  # drops duplicates of tied tensors; load_model restores them
        self.lm.tokenizer.save_pretrained(str(out / TOKENIZER_DIR))
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "seed": self.seed,
            "standardized": self.standardized,
            "base_fingerprint": self.lm.spec.fingerprint(),
            "overseer_version": __version__,
        }
        (out / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> SequenceClassifier:
        """Load a directory written by :meth:`save`: the same config, weights, statistics and tokenizer.

        Args:
            path: the directory.
            device: where to put it; default: CUDA when available, else CPU.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        from safetensors.torch import load_model as load_weights_into
        from transformers import AutoTokenizer

        path = Path(path)
        meta = _read_meta(path)
        try:
            config = ClassifierConfig.from_dict(meta["config"])
        except (OverseerError, TypeError) as exc:
            raise OverseerError(f"classifier directory {path} has an invalid config in {CONFIG_FILE}: {exc}") from None
        if config.pooling is None:
            raise OverseerError(f"classifier directory {path} has no pooling in {CONFIG_FILE}; re-save it")
        weights = [HEAD_FILE, *((ADAPTER_FILE, ADAPTER_CONFIG_FILE) if config.lora else (BODY_FILE,)), TOKENIZER_DIR]
        missing = [name for name in weights if not (path / name).exists()]
        if missing:
            raise OverseerError(f"classifier directory {path} is missing {', '.join(missing)}; save it again")
        lm = load_model(
            config.model, num_layers=config.num_layers, device=device, dtype=config.dtype,
            trust_remote_code=config.trust_remote_code,
        )
        if config.lora and lm.spec.fingerprint() != meta.get("base_fingerprint"):
            warnings.warn(
                f"base model {config.model!r} differs from the one the LoRA classifier in {path} was saved with "
                "(files changed since); its predictions may differ",
                stacklevel=2,
            )
        lm.tokenizer = AutoTokenizer.from_pretrained(str(path / TOKENIZER_DIR))
        seed = int(meta.get("seed", 0))
        module = _build_module(lm, config, seed)
        try:
            if config.lora:
                _load_adapter(module.body, load_file(str(path / ADAPTER_FILE)), path / ADAPTER_FILE)
            else:
                missing_keys, unexpected = load_weights_into(module.body, str(path / BODY_FILE), strict=False)
                if missing_keys or unexpected:
                    raise OverseerError(
                        f"{path / BODY_FILE} does not fit {config.model!r}: missing {sorted(missing_keys)[:3]}, "
                        f"unexpected {sorted(unexpected)[:3]}; load it with the base model it was trained from"
                    )
            head = load_file(str(path / HEAD_FILE))
        except SafetensorError as exc:
            raise OverseerError(f"classifier directory {path} has an unreadable weights file: {exc}") from None
        expected = {"head.weight", "head.bias", "feature_mean", "feature_scale"}
        if set(head) != expected:
            raise OverseerError(f"{path / HEAD_FILE} holds {sorted(head)}; expected {sorted(expected)}")
        try:
            module.head.load_state_dict({"weight": head["head.weight"], "bias": head["head.bias"]}, strict=True)
            module.feature_mean.copy_(head["feature_mean"])
            module.feature_scale.copy_(head["feature_scale"])
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise OverseerError(f"{path / HEAD_FILE} does not fit {config.model!r}: {first}") from None
        return cls(config, lm, module, seed, bool(meta.get("standardized", False)))


def _read_meta(path: Path) -> dict[str, Any]:
    """The JSON header of a saved classifier, checked for format and version."""
    file = path / CONFIG_FILE
    expected = f"a directory written by SequenceClassifier.save (format version {FORMAT_VERSION})"
    if not path.is_dir():
        raise OverseerError(f"classifier directory {path} does not exist; expected {expected}")
    if not file.is_file():
        raise OverseerError(f"{path} has no {CONFIG_FILE}, so it is not a saved classifier; expected {expected}")
    try:
        meta = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise OverseerError(f"cannot read {file}: {exc}; expected {expected}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise OverseerError(f"{file} is not a SequenceClassifier header (format {found!r}); expected {expected}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise OverseerError(
            f"classifier in {path} has format version {meta.get('format_version')!r}; this overseer reads "
            f"version {FORMAT_VERSION} only (load it with the overseer release that saved it)"
        )
    if not isinstance(meta.get("config"), dict):
        raise OverseerError(f"{file} has no config; expected {expected}")
    return meta


def _load_adapter(body: Any, state: dict[str, torch.Tensor], file: Path) -> None:
    """Put saved LoRA weights into ``body``; every adapter weight must be present, nothing else."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    wanted = set(get_peft_model_state_dict(body))
    if set(state) != wanted:
        extra, missing = sorted(set(state) - wanted), sorted(wanted - set(state))
        raise OverseerError(
            f"{file} does not fit this model's LoRA adapters: missing {missing[:3]}, unexpected {extra[:3]}; "
            "load it with the base model and LoRA settings it was trained with"
        )
    result = set_peft_model_state_dict(body, state)
    if getattr(result, "unexpected_keys", None):
        raise OverseerError(f"{file} has weights this model cannot take: {sorted(result.unexpected_keys)[:3]}")


# --- training ---------------------------------------------------------------------------------------


@functools.cache
def _trainer_classes() -> tuple[type, type]:
    """The Trainer subclass and the early-stopping callback, defined on first use (lazy imports)."""
    import torch
    from transformers import Trainer, TrainerCallback

    class ClassifierTrainer(Trainer):
        """A Trainer whose loss is any ``loss_fn(logits, targets, step_frac)`` on (batch, 2) logits.

        While training, the loss gets ``step_frac = global_step / max_steps``; evaluation (the held-out
        slice of early stopping) scores ``eval_loss_fn(logits, targets)``.
        """

        loss_is_scaled_for_ga = False  # our losses are per-batch means: the Trainer divides by grad_accum

        def __init__(
            self, *args: Any, loss_fn: LossFn, eval_loss_fn: Callable[..., Any], head_lr: float | None = None,
            score_penalty: float = 0.0, **kwargs: Any,
        ):
            super().__init__(*args, **kwargs)
            self.loss_fn = loss_fn
            self.score_penalty = score_penalty
            self.eval_loss_fn = eval_loss_fn
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
            targets = inputs.pop("labels")  # (b, ...) as given to fit_classifier
            penalty = None
            if self.score_penalty and "input_ids_b" in inputs:
                both = model(**inputs, both=True)  # (b, 4): each text's own logits
                scores = torch.stack([both[:, 1] - both[:, 0], both[:, 3] - both[:, 2]])  # (2, b)
                logits = both[:, :2] - both[:, 2:]
                penalty = self.score_penalty * scores.pow(2).mean()
            else:
                logits = model(**inputs)  # (b, 2)
            if model.training:
                step_frac = self.state.global_step / max(1, self.state.max_steps)
                loss = self.loss_fn(logits, targets, step_frac)
                if penalty is not None:
                    loss = loss + penalty
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise TrainingDivergedError(self.state.global_step, value, self.args.learning_rate)
                self.loss_curve.append(value)
            else:
                loss = self.eval_loss_fn(logits, targets)
            return (loss, {"logits": logits}) if return_outputs else loss

    class KeepBest(TrainerCallback):
        """Early stopping on the held-out loss; keeps the best trainable weights in memory.

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

    return ClassifierTrainer, KeepBest


def _target_rows(name: str, targets: Any, n: int) -> np.ndarray:
    array = np.asarray(targets)
    if array.ndim == 0 or len(array) != n:
        raise OverseerError(f"{name} must have one row per text ({n}); got shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
        if not np.isfinite(array).all():
            raise OverseerError(f"{name} must be finite numbers; got NaN or infinity")
    elif not np.issubdtype(array.dtype, np.integer) and not np.issubdtype(array.dtype, np.bool_):
        raise OverseerError(f"{name} must be numbers; got dtype {array.dtype}")
    return array


def _free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def fit_classifier(
    classifier: SequenceClassifier,
    texts: Sequence[str],
    targets: Any,
    loss_fn: LossFn,
    *,
    pairs: Sequence[str] | None = None,
    eval_texts: Sequence[str] | None = None,
    eval_pairs: Sequence[str] | None = None,
    eval_targets: Any = None,
    eval_loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    lr: float = 5e-5,
    head_lr: float | None = None,
    epochs: float = 2.0,
    batch_size: int = 32,
    grad_accum: int = 1,
    lr_scheduler: str = "cosine",
    warmup_ratio: float = 0.0,
    weight_decay: float = 0.0,
    eval_steps: int | None = None,
    early_stopping_patience: int = 1,
    seed: int = 0,
    use_cpu: bool = False,
    score_penalty: float = 0.0,
) -> ClassifierFit:
    """Train ``classifier`` in place on ``texts`` towards ``targets`` under ``loss_fn``, with the HF Trainer.

    One code path serves CPU, one GPU and several GPUs (``torchrun`` / ``accelerate launch`` around
    the calling script: the Trainer brings DDP, bf16 autocast and gradient accumulation). Batches are
    padded per batch; nothing is written to disk. With ``config.standardize``, the first fit sets the
    head's input statistics from the untrained body on up to 256 training texts (picked with ``seed``).

    Args:
        classifier: the model to train (with LoRA, only adapters and head train).
        texts: training texts.
        targets: one row per text, handed to ``loss_fn`` batched as a tensor: e.g. (n, 2) soft labels
            (float32), (n,) class indices (int64), or ones for a Bradley-Terry loss on compared pairs.
        loss_fn: ``(logits (b, 2), targets (b, ...), step_frac) -> scalar``, ``step_frac`` being
            ``global_step / max_steps`` (for schedules inside the loss).
        pairs: second texts, read as ``classifier.config.pairing`` says.
        eval_texts: held-out texts for early stopping (evaluated after each epoch, or every
            ``eval_steps`` steps); training stops after ``early_stopping_patience`` evaluations without
            a lower loss and the best weights are restored.
        eval_pairs: second texts of the held-out slice.
        eval_targets: held-out targets, shaped like ``targets``.
        eval_loss_fn: ``(logits, targets) -> scalar`` on held-out batches; default ``loss_fn`` at ``step_frac=1``.
        lr: peak AdamW learning rate.
        head_lr: learning rate of the head (its own parameter group, no weight decay); None: ``lr``.
        epochs: passes over the training texts.
        batch_size: texts per device per micro-step.
        grad_accum: micro-steps per optimizer step.
        lr_scheduler: a transformers schedule name (``cosine``, ``linear``, ``constant``...).
        warmup_ratio: share of steps with linear warm-up.
        weight_decay: AdamW weight decay.
        eval_steps: evaluate every N steps; None: after each epoch.
        early_stopping_patience: evaluations without improvement before stopping.
        seed: seeds data order, dropout and the standardisation sample.
        use_cpu: train on the CPU even when a GPU is present.
        score_penalty: with ``pairing="compare"``, adds this weight times the mean squared score
            (log-odds) of both texts of each pair to the training loss: a comparison loss alone
            fixes only score differences, and this centres the scores at 0 (the prover-verifier
            game's Bradley-Terry verifier, Kirchner et al. 2024).

    Returns:
        The loss curve, the Trainer's logs and the early-stopping outcome.

    Raises:
        TrainingDivergedError: the loss became NaN or infinite (an :class:`OverseerError`).
    """
    from transformers import PrinterCallback, TrainingArguments

    texts = _text_list("texts", texts) or []
    rows = classifier.encode(texts, pairs)
    if not rows:
        raise OverseerError("fit_classifier needs at least one training text; got none")
    target_rows = _target_rows("targets", targets, len(rows))
    for row, y in zip(rows, target_rows, strict=True):
        row["labels"] = y
    eval_rows: list[dict[str, Any]] = []
    if eval_texts is not None and len(eval_texts) > 0:
        if (pairs is None) != (eval_pairs is None):
            raise OverseerError("give second texts for both training and held-out texts, or for neither")
        eval_rows = classifier.encode(eval_texts, eval_pairs)
        if eval_targets is None:
            raise OverseerError("eval_texts need eval_targets, one row per held-out text")
        for row, y in zip(eval_rows, _target_rows("eval_targets", eval_targets, len(eval_rows)), strict=True):
            row["labels"] = y
    if lr_scheduler not in SCHEDULERS:
        raise unknown("lr scheduler", lr_scheduler, SCHEDULERS)
    if isinstance(score_penalty, bool) or not isinstance(score_penalty, int | float) or not score_penalty >= 0:
        raise OverseerError(f"score_penalty must be a number >= 0; got {score_penalty!r}")
    if score_penalty and (pairs is None or classifier.config.pairing != "compare"):
        raise OverseerError("score_penalty needs pairs of texts and a classifier with pairing='compare'")
    evaluate = len(eval_rows) > 0
    bf16 = classifier.config.bf16
    net = classifier.model_
    collate = _Collator(classifier.lm.tokenizer)
    with tempfile.TemporaryDirectory(prefix="overseer-classifier-") as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=batch_size,
            gradient_accumulation_steps=grad_accum,
            num_train_epochs=epochs,
            learning_rate=lr,
            weight_decay=weight_decay,
            warmup_steps=warmup_ratio,  # a float below 1 is a share of the steps
            lr_scheduler_type=lr_scheduler,
            bf16=bf16,
            use_cpu=use_cpu,
            seed=seed,
            eval_strategy=("steps" if eval_steps else "epoch") if evaluate else "no",
            eval_steps=eval_steps,
            save_strategy="no",
            logging_strategy="epoch",
            report_to=[],
            remove_unused_columns=False,
            label_names=["labels"],
            disable_tqdm=not sys.stderr.isatty(),
            dataloader_pin_memory=not use_cpu,
            ddp_find_unused_parameters=False,  # every parameter that trains is used in every step
        )
        if classifier.config.standardize and not classifier.standardized:
            net.to(args.device)
            classifier.standardize_rows(rows, batch_size, seed)
        trainer_cls, keep_best_cls = _trainer_classes()
        keep_best = keep_best_cls(net, early_stopping_patience)
        trainer = trainer_cls(
            model=net,
            args=args,
            train_dataset=rows,
            eval_dataset=eval_rows if evaluate else None,
            data_collator=collate,
            callbacks=[keep_best] if evaluate else None,
            loss_fn=loss_fn,
            eval_loss_fn=eval_loss_fn or (lambda logits, targets: loss_fn(logits, targets, 1.0)),
            head_lr=head_lr,
            score_penalty=float(score_penalty),
        )
        trainer.remove_callback(PrinterCallback)  # quiet: progress bar on a terminal only
        trainer.train()
        keep_best.restore()
        fit = ClassifierFit(
            loss_curve=trainer.loss_curve,
            log_history=list(trainer.state.log_history),
            best_eval_loss=keep_best.best if evaluate else None,
            stopped_at=keep_best.stopped_at,
            is_main_process=trainer.is_world_process_zero(),
        )
        # Training state is not needed for prediction: drop optimizer moments and gradients now.
        trainer.accelerator.free_memory()
        net.zero_grad(set_to_none=True)
        del trainer
        _free_memory()
    return fit
