"""One record type for every data source: a :class:`Sample` (input, target, choices, id, metadata, group).

A sample is what a model is asked (a string, or a chat of ``{"role", "content"}`` messages), what
a correct answer is (one string, or several accepted ones), the options when the question is
multiple choice, and anything else the source records. A :class:`SampleDataset` is a named tuple of
samples with unique ids and a content hash. Binary tasks are a checked view of samples
(:meth:`overseer.data.BinaryDataset.from_samples`), and a :class:`FieldSpec` says how a source's
records map onto samples.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, overload

from overseer.errors import OverseerError

ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")


class ChatMessage(TypedDict):
    """One chat turn: ``{"role": "user", "content": "..."}`` (roles: see :data:`ROLES`)."""

    role: str
    content: str


@dataclass(frozen=True)
class Sample:
    """One question (or prompt) with its accepted answer(s), as every data source provides them.

    Lists given for ``input``, ``target`` or ``choices`` are stored as tuples, and every message is
    checked to be a ``{"role", "content"}`` dict with a known role and text content.

    Attributes:
        input: the prompt as text, or a chat as a tuple of ``{"role", "content"}`` messages.
        target: the correct answer as text ("18", "B", "1"), or a tuple of accepted answers;
            "" when the source has none.
        choices: the options of a multiple-choice question, in the order shown; None otherwise.
        id: unique within its dataset; loaders fill in ``<source>-<index>`` when it is "".
        metadata: anything else the source records (a worked solution, a category, ...);
            keep it JSON-serialisable, since it enters :meth:`SampleDataset.fingerprint`.
        group: ties samples that must land in the same split (e.g. variants of one template).
    """

    input: str | tuple[ChatMessage, ...]
    target: str | tuple[str, ...] = ""
    choices: tuple[str, ...] | None = None
    id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    group: str | None = None

    def __post_init__(self) -> None:
        where = f"sample {self.id!r}" if self.id else "sample"
        if isinstance(self.input, list | tuple):
            object.__setattr__(self, "input", tuple(_message(m, where, i) for i, m in enumerate(self.input)))
        elif not isinstance(self.input, str):
            raise OverseerError(
                f"{where}: input is a {type(self.input).__name__}; allowed: a string or a list of chat messages"
            )
        if isinstance(self.target, list | tuple):
            object.__setattr__(self, "target", tuple(self.target))
        texts = isinstance(self.target, tuple) and all(isinstance(t, str) for t in self.target)
        if not (isinstance(self.target, str) or texts):
            raise OverseerError(f"{where}: target {self.target!r} is not text; allowed: a string or a list of strings")
        if self.choices is not None:
            if isinstance(self.choices, str) or not isinstance(self.choices, Sequence):
                raise OverseerError(f"{where}: choices {self.choices!r} must be a list of strings or None")
            object.__setattr__(self, "choices", tuple(self.choices))
            if not all(isinstance(c, str) for c in self.choices):  # type: ignore[union-attr]
                raise OverseerError(f"{where}: choices {self.choices!r} must all be strings")
        if not isinstance(self.id, str):
            raise OverseerError(f"{where}: id {self.id!r} must be a string")
        if not isinstance(self.metadata, dict):
            raise OverseerError(f"{where}: metadata must be a dict, not a {type(self.metadata).__name__}")
        if self.group is not None and not isinstance(self.group, str):
            raise OverseerError(f"{where}: group {self.group!r} must be a string or None")

    @property
    def messages(self) -> tuple[ChatMessage, ...]:
        """The input as a chat: a text input becomes one user message."""
        if isinstance(self.input, str):
            return ({"role": "user", "content": self.input},)
        return self.input

    @property
    def targets(self) -> tuple[str, ...]:
        """The accepted answers as a tuple (one element when ``target`` is a string)."""
        return (self.target,) if isinstance(self.target, str) else self.target

    def as_json(self) -> dict[str, Any]:
        """The sample as a JSON-ready dict (tuples become lists)."""
        return {
            "id": self.id,
            "input": self.input if isinstance(self.input, str) else [dict(m) for m in self.input],
            "target": self.target if isinstance(self.target, str) else list(self.target),
            "choices": None if self.choices is None else list(self.choices),
            "metadata": self.metadata,
            "group": self.group,
        }


def _message(msg: Any, where: str, index: int) -> ChatMessage:
    """Check one chat message and return it as a plain ``{"role", "content"}`` dict."""
    if not isinstance(msg, Mapping) or "role" not in msg or "content" not in msg:
        raise OverseerError(f"{where}: input message {index} must be a dict with 'role' and 'content'; got {msg!r}")
    if msg["role"] not in ROLES:
        raise OverseerError(f"{where}: input message {index} has role {msg['role']!r}; allowed: {', '.join(ROLES)}")
    if not isinstance(msg["content"], str):
        raise OverseerError(f"{where}: input message {index} has non-text content {msg['content']!r}")
    return {"role": msg["role"], "content": msg["content"]}


@dataclass(frozen=True)
class SampleDataset:
    """A named, ordered collection of samples with unique, non-empty ids.

    Supports ``len``, iteration, indexing (``ds[0]`` is a sample) and slicing (``ds[:100]`` is a
    dataset of the first 100). ``source`` says where the samples came from (a path, or
    ``hf://datasets/<repo>@<revision>[<split>]``); ``meta`` holds notes such as how many records a
    loader skipped. Neither enters equality or the fingerprint.
    """

    name: str
    samples: tuple[Sample, ...]
    source: str = field(default="", compare=False)
    meta: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "samples", tuple(self.samples))
        seen: set[str] = set()
        for i, sample in enumerate(self.samples):
            if not isinstance(sample, Sample):
                raise OverseerError(f"dataset {self.name!r}: item {i} is a {type(sample).__name__}, not a Sample")
            if not sample.id:
                raise OverseerError(f"dataset {self.name!r}: sample {i} has an empty id; give every sample an id")
            if sample.id in seen:
                raise OverseerError(f"dataset {self.name!r}: duplicate sample id {sample.id!r}")
            seen.add(sample.id)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> SampleDataset: ...

    def __getitem__(self, index: int | slice) -> Sample | SampleDataset:
        if isinstance(index, slice):
            return SampleDataset(self.name, self.samples[index], self.source, dict(self.meta))
        return self.samples[index]

    def fingerprint(self) -> str:
        """Hash of the samples' content (ids, inputs, targets, choices, metadata, groups), in order.

        The same samples always give the same 16 hex digits, whatever the dataset's name or source;
        metadata values that JSON cannot hold are hashed by their ``str``.
        """
        h = hashlib.sha256(b"samples")
        for s in self.samples:
            h.update(json.dumps(s.as_json(), sort_keys=True, ensure_ascii=False, default=str).encode())
            h.update(b"\n")
        return h.hexdigest()[:16]


@dataclass(frozen=True)
class FieldSpec:
    """Which record fields make a :class:`Sample` (for sources whose fields need no reshaping).

    Attributes:
        input: field holding the prompt text, or a list of ``{"role", "content"}`` messages.
        target: field holding the answer (numbers and booleans are written out with ``str``, a
            list becomes several accepted answers); None for sources without one.
        choices: one field holding a list of options, or a tuple of fields holding one option
            each (``("ans0", "ans1", "ans2")``); None when there are no options.
        id: field with a unique id; None numbers the records ``<source>-<index>``.
        group: field whose value ties records that must share a split; None for no groups.
        metadata: fields copied as they are into ``Sample.metadata``.
    """

    input: str = "input"
    target: str | None = "target"
    choices: str | tuple[str, ...] | None = None
    id: str | None = None
    group: str | None = None
    metadata: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.metadata, str):  # a single name, not its letters
            object.__setattr__(self, "metadata", (self.metadata,))
        else:
            object.__setattr__(self, "metadata", tuple(self.metadata))
        if self.choices is not None and not isinstance(self.choices, str):
            object.__setattr__(self, "choices", tuple(self.choices))
