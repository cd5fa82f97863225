"""One schema for every binary task: id, text (or a text pair), label, and an optional group.

A binary task is a checked view of samples (:class:`overseer.data.Sample`): each target must read
as 0 or 1, see :meth:`BinaryDataset.from_samples` and :meth:`BinaryDataset.to_samples`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from overseer.data._files import parse_label
from overseer.data._sample import Sample, SampleDataset
from overseer.errors import OverseerError

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

    @classmethod
    def from_samples(
        cls,
        samples: SampleDataset | Sequence[Sample],
        *,
        pairing: Pairing = "single",
        label_map: Mapping[Any, Any] | None = None,
        name: str | None = None,
        source: str | None = None,
    ) -> BinaryDataset:
        """View samples as a binary task, checking that each has a text input and a 0/1 target.

        ``text`` is the sample's input, ``label`` its target (``"0"``/``"1"``, ``"true"``/``"false"``,
        or any value mapped through ``label_map``), ``id`` and ``group`` are kept. For the "concat"
        and "compare" pairings the second text is ``metadata["text_pair"]``. The first sample that
        does not fit raises an :class:`OverseerError` naming it. ``name`` and ``source`` default to
        the sample dataset's own.
        """
        if pairing not in PAIRINGS:
            raise OverseerError(f"unknown pairing {pairing!r}; allowed: {', '.join(PAIRINGS)}")
        if name is None:
            name = samples.name if isinstance(samples, SampleDataset) else "samples"
        if source is None:
            source = samples.source if isinstance(samples, SampleDataset) else ""
        examples = [_example(s, f"dataset {name!r}: sample {s.id!r}", pairing, label_map) for s in samples]
        return make_dataset(name, examples, pairing=pairing, source=source)

    def to_samples(self) -> SampleDataset:
        """The examples as samples: target ``"0"``/``"1"``, a text pair in ``metadata["text_pair"]``.

        ``BinaryDataset.from_samples(ds.to_samples(), pairing=ds.pairing)`` gives back ``ds``
        (same examples, same fingerprint).
        """
        samples = tuple(
            Sample(
                input=ex.text,
                target=str(ex.label),
                id=ex.id,
                metadata={} if ex.text_pair is None else {"text_pair": ex.text_pair},
                group=ex.group,
            )
            for ex in self.examples
        )
        return SampleDataset(self.name, samples, self.source, dict(self.meta))


def _example(sample: Sample, where: str, pairing: Pairing, label_map: Mapping[Any, Any] | None) -> Example:
    """One sample as an example of a binary task, or a one-line error saying why it is not one."""
    if not isinstance(sample.input, str):
        raise OverseerError(f"{where} has a chat input; a binary task needs a text input")
    if not isinstance(sample.target, str):
        raise OverseerError(f"{where} has several targets {sample.target!r}; a binary task needs one, 0 or 1")
    if label_map is None:
        try:
            label = parse_label(sample.target, where)
        except OverseerError:
            raise OverseerError(
                f"{where} has target {sample.target!r}; allowed: 0, 1, true, false (or give label_map=...)"
            ) from None
    else:
        label = parse_label(sample.target, where, label_map)
    pair = sample.metadata.get("text_pair")
    if pairing == "single" and pair is not None:
        raise OverseerError(f"{where} has metadata['text_pair'] but pairing is 'single'; use 'concat' or 'compare'")
    if pairing != "single" and not isinstance(pair, str):
        raise OverseerError(f"{where} needs a text in metadata['text_pair'] for pairing {pairing!r}")
    return Example(id=sample.id, text=sample.input, label=label, text_pair=pair, group=sample.group)


def make_dataset(
    name: str, examples: Sequence[Example], pairing: Pairing = "single", source: str = ""
) -> BinaryDataset:
    """Build a dataset, checking ids are unique and labels are 0/1."""
    seen: set[str] = set()
    for ex in examples:
        if ex.label not in (0, 1):
            raise OverseerError(f"dataset {name!r}: example {ex.id!r} has label {ex.label!r}; allowed: 0, 1")
        if ex.id in seen:
            raise OverseerError(f"dataset {name!r}: duplicate example id {ex.id!r}")
        seen.add(ex.id)
    return BinaryDataset(name=name, examples=tuple(examples), pairing=pairing, source=source)
