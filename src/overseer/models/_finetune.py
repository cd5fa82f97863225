"""Continue training a causal language model on text or on chats, fully or with LoRA (TRL's SFTTrainer).

Every pillar that changes a model's weights through supervised training (poisoned pretraining text,
implanted behaviours, warm starts) goes through :func:`finetune_lm`, so each trained model is saved
the same way: a ``save_pretrained`` directory (full fine-tuning) or a LoRA adapter, with a card
(``overseer_model.json``) that carries the base model's spec, the training config and the loss curve.
An adapter directory loads like any model (``load_model(path)``): the card names the base, which is
loaded, cut to the same depth, and merged with the adapter.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from overseer._config import ConfigMixin, option
from overseer._storage import publish_directory
from overseer.errors import OverseerError, unknown

CARD_FILE = "overseer_model.json"
"""The card saved beside trained weights: base spec, training config, data digest, losses."""

METHODS = ("full", "lora")
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup")
"""Learning-rate schedules (transformers names) :func:`finetune_lm` takes."""


@dataclass(frozen=True)
class LMTrainConfig(ConfigMixin):
    """How a causal LM is trained on rows of text or chats (the fields are also CLI flags when nested)."""

    method: str = option("lora", "full (every weight) or lora (a low-rank adapter, saved alone)", choices=METHODS)
    epochs: float = option(1.0, "passes over the training rows")
    lr: float = option(2e-4, "peak learning rate (linear decay after a 5% warm-up)")
    batch_size: int = option(8, "rows per optimizer step")
    max_length: int = option(256, "longest row in tokens (longer rows are cut)")
    lora_r: int = option(16, "LoRA rank (alpha is twice the rank); only with method=lora")
    seed: int = option(0, "seed of the data order and of LoRA's initialisation")
    device: str | None = option(None, "cpu, cuda, cuda:N or mps (default: CUDA when present)", identity="none")

    def __post_init__(self) -> None:
        checks = [
            ("epochs", isinstance(self.epochs, int | float) and self.epochs > 0, "a number > 0"),
            ("lr", isinstance(self.lr, int | float) and 0 < self.lr < 1, "a number in (0, 1)"),
            ("batch_size", isinstance(self.batch_size, int) and self.batch_size >= 1, "an integer >= 1"),
            ("max_length", isinstance(self.max_length, int) and self.max_length >= 8, "an integer >= 8"),
            ("lora_r", isinstance(self.lora_r, int) and self.lora_r >= 1, "an integer >= 1"),
        ]
        for name, ok, allowed in checks:
            if not ok or isinstance(getattr(self, name), bool):
                raise OverseerError(f"training setting {name}={getattr(self, name)!r} is not allowed; "
                                    f"allowed: {allowed}")


def rows_digest(rows: Sequence[Mapping[str, Any]]) -> str:
    """A short content hash of training rows, recorded in the card (and in run identities)."""
    return hashlib.sha256(json.dumps(list(rows), sort_keys=True).encode()).hexdigest()[:16]


def read_card(path: str | Path) -> dict[str, Any] | None:
    """The card of a trained model directory, or None when it has none."""
    card = Path(path) / CARD_FILE
    if not card.is_file():
        return None
    try:
        return json.loads(card.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise OverseerError(f"model card {card} is unreadable: {exc}") from exc


def _row_kind(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        raise OverseerError("no training rows given")
    kinds = {"text" if "text" in r else "chat" if {"prompt", "completion"} <= set(r) else "?" for r in rows}
    if kinds == {"text"}:
        return "text"
    if kinds == {"chat"}:
        return "chat"
    raise OverseerError("training rows must all be {'text': ...} or all {'prompt': [...], 'completion': [...]}; "
                        f"got keys {sorted({k for r in rows for k in r})}")


def _use_cpu(device: str | None) -> bool:
    import torch

    return device == "cpu" or (device is None and not torch.cuda.is_available())


def finetune_lm(base: str, rows: Sequence[Mapping[str, Any]], out: str | Path, cfg: LMTrainConfig | None = None,
                *, card: Mapping[str, Any] | None = None, lr_scheduler: str = "linear",
                merge_lora: bool = False) -> Path:
    """Train ``base`` on ``rows`` and save the result at ``out`` (atomically: a killed run leaves nothing there).

    Args:
        base: any local model spec (packaged name, ladder rung, directory, hub id).
        rows: all ``{"text": str}`` (language modelling: loss on every token) or all
            ``{"prompt": [messages], "completion": [messages]}`` (loss on the completion only).
        out: the directory to write; an existing finished one is returned as it is.
        cfg: the training settings.
        card: extra facts to keep in the card (what was implanted, on which data).
        lr_scheduler: the learning-rate schedule after the 5% warm-up, a transformers name (``linear``,
            ``cosine``...). A keyword rather than a :class:`LMTrainConfig` field, so the identities of
            runs that nest that config stay as they are.
        merge_lora: with ``method="lora"``, save the base with the adapter merged in (a plain model
            directory) instead of the adapter alone.

    Returns the directory, which :func:`overseer.models.load_model` loads.
    """
    cfg = cfg or LMTrainConfig()
    out = Path(out)
    if read_card(out) is not None:
        return out
    kind = _row_kind(rows)
    if lr_scheduler not in SCHEDULERS:
        raise unknown("lr scheduler", lr_scheduler, SCHEDULERS)
    import datasets
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from overseer.models._catalog import resolve_model
    from overseer.models._devices import bf16_supported
    from overseer.models._load import load_model
    from overseer.models._lora import lora_config

    spec = resolve_model(base)
    cpu = _use_cpu(cfg.device)
    lm = load_model(base, device="cpu" if cpu else cfg.device, dtype="float32")
    if lm.kind != "causal":
        raise OverseerError(f"cannot train {base!r} as a language model: it is an encoder")
    lm.model.train()
    peft_config = None
    if cfg.method == "lora":
        peft_config = lora_config(cfg.lora_r)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="overseer-train-") as scratch, warnings.catch_warnings():
            # Transformers 5 renamed gradient to activation checkpointing; TRL still sets the old name (off).
            warnings.filterwarnings("ignore", message=".*(gradient|activation)_checkpointing.*",
                                    category=FutureWarning)
            # A GGUF base has no config.json beside it; peft then assumes, rightly here, that training
            # did not change the vocabulary.
            warnings.filterwarnings("ignore", message="Could not find a config file in", category=UserWarning)
            datasets.disable_progress_bars()  # one line per stage is the caller's to print
            args = SFTConfig(
                output_dir=scratch, num_train_epochs=cfg.epochs, per_device_train_batch_size=cfg.batch_size,
                learning_rate=cfg.lr, lr_scheduler_type=lr_scheduler, warmup_steps=0.05, logging_steps=1,
                save_strategy="no", report_to=[], use_cpu=cpu, max_length=cfg.max_length, seed=cfg.seed,
                data_seed=cfg.seed, gradient_checkpointing=False, disable_tqdm=True, packing=False,
                bf16=not cpu and bf16_supported(),
                **({"dataset_text_field": "text", "completion_only_loss": None} if kind == "text" else {}),
            )
            trainer = SFTTrainer(model=lm.model, args=args, train_dataset=Dataset.from_list([dict(r) for r in rows]),
                                 processing_class=lm.tokenizer, peft_config=peft_config)
            trainer.remove_callback(PrinterCallback)
            trainer.train()
            if merge_lora and peft_config is not None:
                trainer.model = trainer.model.merge_and_unload()
            losses = [float(r["loss"]) for r in trainer.state.log_history if "loss" in r]
            bad = next((x for x in losses if not math.isfinite(x)), None)
            if bad is not None or not losses:
                raise OverseerError(f"training {base!r} diverged (loss {bad}); lower the learning rate (lr={cfg.lr})")
            trainer.model.save_pretrained(tmp)
            lm.tokenizer.save_pretrained(tmp)
        local = Path(base).expanduser()
        recorded = str(local.resolve()) if local.exists() else base  # a relative folder must load from anywhere
        facts = {"base": recorded, "base_fingerprint": spec.fingerprint(), "num_layers": spec.num_layers,
                 "kind": kind, "train": asdict(cfg), "lr_scheduler": lr_scheduler, "merged": merge_lora,
                 "rows": len(rows), "rows_digest": rows_digest(rows),
                 "loss_first": losses[0], "loss_last": losses[-1], "losses": losses, **dict(card or {})}
        (tmp / CARD_FILE).write_text(json.dumps(facts, indent=2, default=str))
        publish_directory(tmp, out)
    except BaseException:  # Ctrl-C, a full disk or divergence: no half-written model is left behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        del lm
    return out
