"""A sequence classifier's data: texts tokenized once, padded per batch, longest batches first."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from overseer.errors import OverseerError


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
