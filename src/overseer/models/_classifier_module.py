"""The torch module of a sequence classifier: a transformer body, pooling (or token log-likelihoods), a linear head."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from overseer.errors import OverseerError
from overseer.models._classifier_config import LIKELIHOOD, ClassifierConfig
from overseer.models._features import pool
from overseer.models._load import LoadedModel

if TYPE_CHECKING:
    import torch


@functools.cache
def _module_class() -> type:
    """Defined on first use so that importing overseer.models does not import torch."""
    import torch

    class ClassifierModule(torch.nn.Module):
        """A transformer body with a linear 2-class head on its pooled last hidden state (or its likelihood).

        Causal bodies are read at the last real token (``pooling="last"``), found from the attention
        mask, and get position ids that count real tokens only: left- and right-padded batches give
        the logits each text gets alone. With a second text (``pairing="compare"``), each text is
        scored separately and the logits are the difference of the two scores.

        With ``pooling="likelihood"`` the body is the whole causal language model and the head reads
        two features of the text: the mean and the lowest log-probability the model gives its tokens
        (each after the tokens before it). Training then moves the language model itself, so what it
        knows about the next token (an arithmetic fact, say) becomes the score, which a head on one
        hidden state of a tiny model cannot reach.
        """

        def __init__(self, body: torch.nn.Module, features: int, pooling: str, causal: bool):
            super().__init__()
            self.body = body
            self.head = torch.nn.Linear(features, 2)
            self.pooling = pooling
            self.causal = causal
            # The head reads (pooled - feature_mean) / feature_scale; identity until standardize() sets them.
            self.register_buffer("feature_mean", torch.zeros(features))
            self.register_buffer("feature_scale", torch.ones(features))

        def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            """What the head reads per text: the pooled last hidden state (batch, hidden) or likelihood (batch, 2)."""
            extra: dict[str, Any] = {}
            if self.causal:
                extra = {"position_ids": (attention_mask.cumsum(-1) - 1).clamp(min=0), "use_cache": False}
            out = self.body(input_ids=input_ids, attention_mask=attention_mask, **extra)
            if self.pooling == LIKELIHOOD:
                return _token_likelihood(out.logits, input_ids, attention_mask)
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


def _token_likelihood(logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(batch, 2): the mean and the lowest log-probability of each text's tokens after its first.

    A token counts when it and the token before it are real (either padding side); a text of one
    token gets zeros.
    """
    import torch

    shifted = logits[:, :-1].float()  # predictions of each next token (a float32 copy of bf16/fp16 logits)
    taken = shifted.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1) - torch.logsumexp(shifted, dim=-1)
    real = (mask[:, 1:] * mask[:, :-1]).bool()
    count = real.sum(1).clamp(min=1)
    mean = torch.where(real, taken, 0.0).sum(1) / count
    lowest = torch.where(real, taken, torch.inf).amin(1)
    lowest = torch.where(real.any(1), lowest, 0.0)
    return torch.stack([mean, lowest], dim=1)


def _build_module(lm: LoadedModel, config: ClassifierConfig, seed: int) -> torch.nn.Module:
    """Head on ``lm``'s body; with LoRA only the adapters and the head are trainable."""
    import torch
    import transformers

    likelihood = config.pooling == LIKELIHOOD
    if likelihood and lm.kind != "causal":
        raise OverseerError(
            f"pooling 'likelihood' reads a causal language model's own next-token predictions; {lm.spec.name!r} is "
            f"an {lm.kind}: use last, mean or first"
        )
    body = lm.model if likelihood else lm.backbone
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
        from peft import get_peft_model

        from overseer.models._lora import lora_config

        adapters = lora_config(
            config.lora_r, alpha=config.lora_alpha, dropout=config.lora_dropout,
            target_modules=list(config.target_modules) if config.target_modules else None, task_type=None,
        )
        try:
            body = get_peft_model(body, adapters)
        except ValueError as exc:
            first = str(exc).strip().splitlines()[0]
            raise OverseerError(
                f"cannot add LoRA adapters to {lm.spec.name!r}: {first}; name the layers to adapt with "
                "target_modules (e.g. [q_proj, v_proj])"
            ) from exc
    assert config.pooling is not None  # resolved by SequenceClassifier.build
    features = 2 if likelihood else int(lm.model.config.hidden_size)
    module = _module_class()(body, features, config.pooling, lm.kind == "causal")
    # A zero head starts every prediction at P = 0.5, as the weak-to-strong reference code does (its score
    # layer is zero-initialised): a random head on un-normalised hidden states starts confidently wrong.
    torch.nn.init.zeros_(module.head.weight)
    torch.nn.init.zeros_(module.head.bias)
    module.head.float()
    return module.to(lm.device)
