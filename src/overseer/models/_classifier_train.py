"""Training a sequence classifier with the HF Trainer under any loss ``(logits, targets, step_frac) -> scalar``."""

from __future__ import annotations

import functools
import math
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from overseer.errors import OverseerError, unknown
from overseer.models._classifier_batches import _Collator, _text_list
from overseer.models._classifier_config import ClassifierFit, LossFn, TrainingDivergedError
from overseer.models._devices import free_accelerator_memory
from overseer.models._finetune import SCHEDULERS

if TYPE_CHECKING:
    import torch

    from overseer.models._classifier import SequenceClassifier


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
        free_accelerator_memory()
    return fit
