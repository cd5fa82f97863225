"""Hidden-state features in batches sorted by length, with correct pooling for either padding side."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from overseer._progress import progress as show_progress
from overseer.errors import OverseerError, unknown
from overseer.models._load import first_blocks

if TYPE_CHECKING:
    import torch

    from overseer.models._load import LoadedModel

Pooling = Literal["last", "mean", "first"]
POOLINGS: tuple[str, ...] = ("last", "mean", "first")


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool ``hidden`` (batch, seq, dim) over real tokens given ``mask`` (batch, seq).

    ``last`` is the last real token, found from the mask, so it is right for left and right
    padding alike; ``mean`` averages real tokens; ``first`` is the first real token (BERT's CLS).
    """
    import torch

    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    if pooling == "last":
        idx = torch.where(mask.bool(), positions, -1).amax(dim=1)  # (batch,)
    elif pooling == "first":
        idx = torch.where(mask.bool(), positions, mask.shape[1]).amin(dim=1)
    elif pooling == "mean":
        weights = mask.to(hidden.dtype).unsqueeze(-1)  # (batch, seq, 1)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
    else:
        raise unknown("pooling", pooling, POOLINGS)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]  # (batch, dim)


def _check_layers(layers: Sequence[int], num_layers: int) -> list[int]:
    resolved = []
    for layer in layers:
        index = num_layers + 1 + layer if layer < 0 else layer
        if not 0 <= index <= num_layers:
            raise OverseerError(
                f"layer {layer} is out of range; this model allows 0..{num_layers} (or -1 for the last)"
            )
        resolved.append(index)
    return resolved


def extract_features(
    lm: LoadedModel,
    texts: Sequence[str],
    layers: Sequence[int] = (-1,),
    pooling: str = "last",
    batch_size: int = 32,
    max_length: int = 512,
    text_pairs: Sequence[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[int, np.ndarray]:
    """Pooled hidden states of ``texts`` at each of ``layers`` (0 = embeddings, -1 = last block).

    Texts are tokenized once, sorted by length and batched, so padding is minimal; results come
    back in the input order as float32 arrays of shape (len(texts), hidden_size), one per layer.
    For encoders ``text_pairs`` are encoded as the tokenizer's sentence pairs; for causal models
    they are joined to the text with a newline.

    ``progress`` is called with the number of texts done after each batch (a run's bar over all
    its extractions); without it, this call shows its own progress with ``len(texts)`` as the
    total: a bar on a terminal, a line every 30 s otherwise (:mod:`overseer._progress`).
    """
    import torch

    if pooling not in POOLINGS:
        raise unknown("pooling", pooling, POOLINGS)
    resolved = _check_layers(layers, lm.num_layers)
    tok = lm.tokenizer
    if text_pairs is not None and lm.kind == "causal":
        texts = [f"{a}\n{b}" for a, b in zip(texts, text_pairs, strict=True)]
        text_pairs = None
    # Causal models read the end of a text (last-token pooling, the answer after a question), so
    # over-long texts lose their beginning, not their end.
    saved_side = tok.truncation_side
    tok.truncation_side = "left" if lm.kind == "causal" else saved_side
    try:
        encoded = tok(
            list(texts),
            list(text_pairs) if text_pairs is not None else None,
            truncation=True,
            max_length=max_length,
        )
    finally:
        tok.truncation_side = saved_side
    input_ids: list[list[int]] = encoded["input_ids"]
    order = np.argsort([len(ids) for ids in input_ids], kind="stable")[::-1]  # longest first: OOM early
    dim = lm.model.config.hidden_size
    out = {layer: np.empty((len(input_ids), dim), dtype=np.float32) for layer in layers}
    backbone = lm.backbone
    device = lm.device
    # Blocks above the deepest requested layer are skipped; one more is kept so that the layer
    # read is a block's raw output (a model may normalise its last hidden state).
    deepest = max(resolved)
    with (first_blocks(lm.model, deepest + 1), torch.inference_mode(),
          show_progress(len(order), "features", "texts", enabled=progress is None) as bar):
        advance = progress if progress is not None else bar.update
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = tok.pad(
                {k: [encoded[k][i] for i in idx] for k in encoded.keys()}, return_tensors="pt"
            ).to(device)
            mask = batch["attention_mask"]
            if lm.kind == "causal":
                # Positions count real tokens only, so left padding does not shift them.
                batch["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
            hidden = backbone(**batch, output_hidden_states=True).hidden_states  # layers+1 x (b, s, d)
            for layer, index in zip(layers, resolved, strict=True):
                pooled = pool(hidden[index], mask, pooling)
                out[layer][idx] = pooled.float().cpu().numpy()
            advance(len(idx))
    return out


def token_features(
    lm: LoadedModel,
    input_ids: Sequence[Sequence[int]],
    layers: Sequence[int] = (-1,),
    batch_size: int = 16,
) -> list[np.ndarray]:
    """Hidden states of every token of each pre-tokenized sequence, the ``layers`` concatenated.

    For causal models position ``t`` has read tokens ``0..t`` only, so row ``t`` is what a streaming
    monitor sees after token ``t`` (token-level probes and output classifiers read it). Sequences run
    in length-sorted, left-padded batches; each comes back as a float32 array of shape
    ``(len(sequence), len(layers) * hidden_size)``, in the input order.
    """
    import torch

    resolved = _check_layers(layers, lm.num_layers)
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    order = np.argsort([len(ids) for ids in input_ids], kind="stable")[::-1]
    out: list[np.ndarray] = [np.empty((0, 0), dtype=np.float32)] * len(input_ids)
    with first_blocks(lm.model, max(resolved) + 1), torch.inference_mode():
        for start in range(0, len(order), max(1, batch_size)):
            idx = order[start : start + max(1, batch_size)]
            width = max(len(input_ids[i]) for i in idx)
            ids = torch.full((len(idx), width), int(pad), dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                seq = list(input_ids[i])
                if seq:
                    ids[row, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
                    mask[row, width - len(seq):] = 1
            ids, mask = ids.to(lm.device), mask.to(lm.device)
            extra = {"position_ids": (mask.cumsum(-1) - 1).clamp(min=0)} if lm.kind == "causal" else {}
            hidden = lm.backbone(input_ids=ids, attention_mask=mask, output_hidden_states=True,
                                 **extra).hidden_states
            stacked = torch.cat([hidden[index] for index in resolved], dim=-1).float().cpu().numpy()
            for row, i in enumerate(idx):
                n = len(input_ids[i])
                out[i] = stacked[row, width - n:] if n else np.zeros((0, stacked.shape[-1]), dtype=np.float32)
    return out
