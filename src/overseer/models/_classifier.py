"""A sequence classifier: a transformer body with a 2-class head, as one object to build, train, save and load.

:class:`SequenceClassifier` wraps any model :func:`~overseer.models.load_model` accepts. The head reads
the body's last hidden state at the last real token (causal models) or its mean over real tokens
(encoders), or (``pooling="likelihood"``, causal models) the mean and lowest log-probability of the
text's tokens, centred and scaled with statistics of the untrained model on the training texts. Every
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

This module holds the classifier object (building, inference, head statistics, saving and loading);
its parts live beside it by job: ``_classifier_config`` (settings, file names), ``_classifier_module``
(the torch module), ``_classifier_batches`` (tokenized rows, padded batches), ``_classifier_reward``
(TRL rewards) and ``_classifier_train`` (:func:`fit_classifier`).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from overseer._storage import publish_directory
from overseer.errors import OverseerError
from overseer.models._catalog import LADDER
from overseer.models._classifier_batches import _Collator, _sorted_batches, _text_list
from overseer.models._classifier_config import (
    ADAPTER_CONFIG_FILE,
    ADAPTER_FILE,
    BODY_FILE,
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    HEAD_FILE,
    TOKENIZER_DIR,
    ClassifierConfig,
)
from overseer.models._classifier_module import _build_module, _module_class
from overseer.models._classifier_reward import conversation_text, reward_function
from overseer.models._load import LoadedModel, load_model

if TYPE_CHECKING:
    import torch


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
        return conversation_text(self.lm.tokenizer, prompt, completion)

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
        return reward_function(self, output, batch_size, name)

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
