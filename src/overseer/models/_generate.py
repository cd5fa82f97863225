"""What a caller asks of text generation, and what comes back, for every backend alike.

:class:`GenerateConfig` holds the sampling settings (greedy when ``temperature`` is 0) and
:class:`Generation` one completion: its text exactly as produced, the token ids and the model's
log-probability of each, why it stopped, and an error when this one item failed. Local models,
OpenAI-compatible servers and the mock backend all fill the same fields, so a pillar never cares
where its completions came from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from overseer.errors import OverseerError

FinishReason = Literal["stop", "length", "error"]


@dataclass(frozen=True)
class GenerateConfig:
    """Sampling settings shared by every backend.

    ``temperature=0`` is greedy decoding (``top_p`` and ``seed`` are then irrelevant, and ``n``
    copies are identical). With a temperature, the same ``seed``, prompts and batch size give the
    same samples on a local model; servers that honour a seed (vLLM does) behave likewise.
    """

    max_new_tokens: int = field(default=64, metadata={"help": "most tokens generated per completion"})
    temperature: float = field(default=0.0, metadata={"help": "0 for greedy decoding, else sampling temperature"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling: keep the smallest token set of this mass"})
    n: int = field(default=1, metadata={"help": "completions per prompt"})
    seed: int | None = field(default=0, metadata={"help": "sampling seed (None: not reproducible)"})
    stop: tuple[str, ...] = field(default=(), metadata={"help": "strings that end a completion (not included)"})

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        else:
            object.__setattr__(self, "stop", tuple(self.stop))
        checks = [
            ("max_new_tokens", self.max_new_tokens, "an integer >= 1",
             isinstance(self.max_new_tokens, int) and self.max_new_tokens >= 1),
            ("temperature", self.temperature, "a number in [0, 100]",
             _is_number(self.temperature) and 0 <= self.temperature <= 100),
            ("top_p", self.top_p, "a number in (0, 1]", _is_number(self.top_p) and 0 < self.top_p <= 1),
            ("n", self.n, "an integer >= 1", isinstance(self.n, int) and self.n >= 1),
            ("seed", self.seed, "an integer >= 0 or None",
             self.seed is None or (isinstance(self.seed, int) and self.seed >= 0)),
            ("stop", self.stop, "non-empty strings", all(isinstance(s, str) and s for s in self.stop)),
        ]
        for name, value, allowed, ok in checks:
            if not ok or isinstance(value, bool):
                raise OverseerError(f"generation setting {name}={value!r} is out of range; allowed: {allowed}")

    @property
    def greedy(self) -> bool:
        """True when decoding is deterministic (temperature 0)."""
        return self.temperature == 0


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Generation:
    """One completion of one prompt.

    ``text`` is the completion as the model wrote it (no stripping), cut before the first stop
    string if one appeared. ``token_ids`` and ``logprobs`` are the generated tokens and the
    model's natural-log probability of each (from the unmodified distribution, before temperature
    or top-p), end-of-turn token excluded. ``finish_reason`` is ``stop`` (end of turn or a stop
    string), ``length`` (hit ``max_new_tokens``) or ``error``, in which case ``error`` says why and
    the item is recorded as failed rather than dropped.
    """

    text: str
    token_ids: tuple[int, ...] = ()
    logprobs: tuple[float, ...] = ()
    finish_reason: FinishReason = "stop"
    error: str | None = None
    hidden: Any = field(default=None, compare=False, repr=False)
    """Local models asked for ``hidden_layers``: the hidden state at each generated token, those layers
    concatenated (a float32 array, one row per token id), read off the generation pass itself."""

    @property
    def ok(self) -> bool:
        """True unless this completion failed."""
        return self.error is None

    @classmethod
    def failed(cls, error: str) -> Generation:
        """A completion that could not be produced, with the reason."""
        return cls(text="", finish_reason="error", error=error)


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the earliest stop string, and whether one was found.

    >>> cut_at_stop("4 + 4 = 8 Question:", [" Question:"])
    ('4 + 4 = 8', True)
    >>> cut_at_stop("no stop here", ["###"])
    ('no stop here', False)
    """
    positions = [i for i in (text.find(s) for s in stop) if i >= 0]
    if not positions:
        return text, False
    return text[: min(positions)], True
