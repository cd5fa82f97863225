"""A scripted backend for tests: ``get_backend("mock", outputs=[...])`` replays fixed completions.

It needs no weights and no network, so a pillar's whole pipeline (prompts, parsing, metrics,
run directories) can be tested in milliseconds, including what happens when a model fails: an
output given as an exception instance is returned as a failed :class:`Generation`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from overseer.errors import OverseerError
from overseer.models._backend import Backend, backend
from overseer.models._generate import GenerateConfig, Generation, cut_at_stop

if TYPE_CHECKING:
    from overseer.models._lm import Chat, OptionScores


def _pseudo_logprob(prompt: str, option: str) -> float:
    """A fixed, made-up log-probability in (-10, 0) from a hash of the prompt and option."""
    digest = hashlib.sha256(f"{prompt}\x00{option}".encode()).digest()
    return -10.0 * (int.from_bytes(digest[:4], "big") / 2**32)


@backend("mock")
class MockBackend(Backend):
    """Scripted outputs in order, then ``fallback`` forever (or an error, when no fallback is given).

    With no script at all every completion is ``(mock output)``.

    Args:
        name: what the mock calls itself (``mock/NAME``).
        outputs: completions to return, one per generated sample, in call order. An ``Exception``
            in the list becomes a failed generation with its message.
        fallback: returned once ``outputs`` is used up; None makes running out of a script an error.
        option_scores: ``(prompt, options) -> logprobs`` for :meth:`score_options`; default: a
            deterministic made-up value per (prompt, option).
        context_length: what the mock reports as its context window.
    """

    kind = "mock"
    capabilities = frozenset({"generate", "score_options", "count_tokens"})
    spec_fields = ("name",)

    def __init__(
        self,
        name: str = "mock",
        outputs: Sequence[str | Exception] | None = None,
        fallback: str | None = None,
        option_scores: Callable[[str, Sequence[str]], Sequence[float]] | None = None,
        context_length: int = 2048,
    ):
        self.name = name or "mock"
        self.outputs = list(outputs or [])
        self.fallback = fallback
        self.option_scores = option_scores
        self._context_length = context_length
        self._next = 0
        self._lock = threading.Lock()
        self.calls: list[tuple[str, GenerateConfig]] = []

    @classmethod
    def from_spec(cls, rest: str, **options: Any) -> MockBackend:
        """``mock`` or ``mock/NAME``."""
        return cls(f"mock/{rest}" if rest else "mock", **options)

    def identity(self) -> dict[str, Any]:
        """The mock's name and a hash of its script, so different scripts make different runs."""
        script = json.dumps([repr(o) for o in self.outputs] + [self.fallback])
        return {"backend": "mock", "model": self.name, "script": hashlib.sha256(script.encode()).hexdigest()[:16]}

    def _take(self) -> str | Exception:
        with self._lock:
            if self._next < len(self.outputs):
                self._next += 1
                return self.outputs[self._next - 1]
        if self.fallback is None and not self.outputs:
            return "(mock output)"
        if self.fallback is None:
            raise OverseerError(f"mock backend {self.name!r} ran out of its {len(self.outputs)} scripted outputs")
        return self.fallback

    def generate(self, prompts: Sequence[Chat | str], config: GenerateConfig | None = None) -> list[list[Generation]]:
        """The next scripted outputs, ``config.n`` per prompt, cut at stop strings."""
        config = config or GenerateConfig()
        results = []
        for prompt in prompts:
            text = self.render(prompt)
            samples = []
            for _ in range(config.n):
                self.calls.append((text, config))
                out = self._take()
                if isinstance(out, Exception):
                    samples.append(Generation.failed(str(out)))
                    continue
                words = out.split(" ")
                finish = "length" if len(words) > config.max_new_tokens else "stop"
                out = " ".join(words[: config.max_new_tokens])
                out, stopped = cut_at_stop(out, config.stop)
                ids = tuple(out.encode())
                samples.append(Generation(out, ids, tuple(0.0 for _ in ids), "stop" if stopped else finish))
            results.append(samples)
        return results

    def score_options(self, prompts: Sequence[Chat | str], options: Sequence[Sequence[str]]) -> list[OptionScores]:
        """Log-probs from ``option_scores`` or made-up deterministic values; one token per word."""
        from overseer.models._lm import OptionScores

        results = []
        for prompt, opts in zip(prompts, options, strict=True):
            text = self.render(prompt)
            values = list(self.option_scores(text, opts)) if self.option_scores else [
                _pseudo_logprob(text, o) for o in opts
            ]
            results.append(OptionScores(tuple(float(v) for v in values), tuple(max(1, len(o.split())) for o in opts)))
        return results

    def count_tokens(self, text: str) -> int:
        """Whitespace-separated words stand in for tokens."""
        return len(text.split())

    @property
    def context_length(self) -> int | None:
        """The context window the mock was told to report."""
        return self._context_length
