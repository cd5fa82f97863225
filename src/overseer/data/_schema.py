"""One schema for every binary task: id, text (or a text pair), label, and an optional group."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Pairing = Literal["single", "concat", "compare"]
PAIRINGS: tuple[str, ...] = ("single", "concat", "compare")


@dataclass(frozen=True)
class Example:
    """One labelled example of a binary task.

    ``text_pair`` is used according to the dataset's ``pairing``: ``concat`` encodes it together
    with ``text`` (question + answer), ``compare`` scores the two texts separately and asks which is
    better (label 1 means ``text`` is the preferred one). ``group`` ties examples that must land in
    the same split (e.g. true and false statements about the same city) so nothing leaks.
    """

    id: str
    text: str
    label: int
    text_pair: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class BinaryDataset:
    """A named list of examples plus how its text pairs are to be encoded."""

    name: str
    examples: tuple[Example, ...]
    pairing: Pairing = "single"
    source: str = ""
    meta: dict[str, str] = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.examples)

    def fingerprint(self) -> str:
        """Hash of the content (ids, texts, labels, pairing): the dataset's identity in caches."""
        h = hashlib.sha256(self.pairing.encode())
        for ex in self.examples:
            h.update(json.dumps([ex.id, ex.text, ex.text_pair, ex.label, ex.group]).encode())
        return h.hexdigest()[:16]

    def labels(self) -> list[int]:
        """Ground-truth labels in order."""
        return [ex.label for ex in self.examples]


def make_dataset(
    name: str, examples: Sequence[Example], pairing: Pairing = "single", source: str = ""
) -> BinaryDataset:
    """Build a dataset, checking ids are unique and labels are 0/1."""
    from overseer.errors import OverseerError

    seen: set[str] = set()
    for ex in examples:
        if ex.label not in (0, 1):
            raise OverseerError(f"dataset {name!r}: example {ex.id!r} has label {ex.label!r}; allowed: 0, 1")
        if ex.id in seen:
            raise OverseerError(f"dataset {name!r}: duplicate example id {ex.id!r}")
        seen.add(ex.id)
    return BinaryDataset(name=name, examples=tuple(examples), pairing=pairing, source=source)
