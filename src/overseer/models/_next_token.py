"""Scoring answer options without prompt echo: the next token's top log-probabilities, and what a server can do.

Full option scoring (:meth:`Backend.score_options <overseer.models.Backend.score_options>`) needs the
log-probability of every token of ``prompt + option``; a served model gives it only through the
completions API with ``echo`` and ``logprobs`` (vLLM does; llama.cpp's server, ollama and hosted chat
APIs do not). Two weaker readings need less of the server:

* ``first_token``: the top-k log-probabilities of the one token after the prompt (``top_logprobs``),
  read by :meth:`Backend.next_token_logprobs <overseer.models.Backend.next_token_logprobs>` as
  :class:`TopTokens`;
* ``sampled``: answers sampled with :meth:`Backend.generate <overseer.models.Backend.generate>` and counted.

:class:`ScoringSupport` says which of the three modes (:data:`SCORING_MODES`) a backend can serve and,
for a server, what it calls itself; a refusal names both (:meth:`ScoringSupport.refusal`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from overseer.models._load import LoadedModel

SCORING_MODES = ("full", "first_token", "sampled")
"""Ways to score answer options, most exact first: prompt+option log-probs, first-token top-k, samples."""

MODE_NEEDS = {
    "full": "the prompt's own log-probabilities: completions with echo=true and logprobs",
    "first_token": "top_logprobs of the next token (chat or completions API)",
    "sampled": "plain generation",
}


@dataclass(frozen=True)
class TopTokens:
    """The most likely next tokens after one prompt: ``{token text: natural-log probability}``.

    ``error`` is set (and ``logprobs`` empty) when the prompt could not be read, so the caller records
    the item as failed. Token texts are as the tokenizer decodes one token (``" she"``, ``"a"``).
    """

    logprobs: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the prompt was read."""
        return self.error is None

    @property
    def mass(self) -> float:
        """Probability held by the listed tokens (the rest is spread over tokens not listed)."""
        return float(sum(math.exp(v) for v in self.logprobs.values()))


@dataclass(frozen=True)
class ScoringSupport:
    """Which scoring modes a backend supports, what the server calls itself, and why a mode is missing."""

    modes: tuple[str, ...]
    server: str | None = None
    where: str = ""
    missing: Mapping[str, str] = field(default_factory=dict)

    def best(self) -> str:
        """The most exact supported mode (full, then first_token, then sampled)."""
        for mode in SCORING_MODES:
            if mode in self.modes:
                return mode
        why = self.missing.get("sampled") or next(iter(self.missing.values()), "")
        raise self._error(f"it answers no scoring request, not even plain generation{': ' + why if why else ''}")

    def refusal(self, mode: str) -> str:
        """One line: ``mode`` is not supported here, why, and which modes are."""
        why = self.missing.get(mode)
        able = ", ".join(self.modes) or "none"
        return (f"{self._who()} cannot score answer options in mode {mode!r} (needs {MODE_NEEDS[mode]}"
                f"{'; ' + why if why else ''}); it supports: {able}. Use --scoring "
                f"{self.modes[0] if self.modes else 'full'} or --scoring auto")

    def _who(self) -> str:
        return f"{self.where} ({self.server})" if self.server else self.where

    def _error(self, why: str) -> Exception:
        from overseer.errors import OverseerError

        return OverseerError(f"{self._who()}: {why}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: modes, server, and why each missing mode is missing."""
        return {"modes": list(self.modes), "server": self.server, "missing": dict(self.missing)}


def merge_token(into: dict[str, float], token: str, logprob: float) -> None:
    """Add ``token``'s probability to ``into`` (two ids that decode to the same text count once, summed)."""
    into[token] = float(logprob) if token not in into else float(math.log(math.exp(into[token]) + math.exp(logprob)))


def parse_top_logprobs(choice: Mapping[str, Any]) -> dict[str, float]:
    """The first generated token's top log-probabilities from one API choice, in any layout servers use.

    * completions (OpenAI, vLLM): ``logprobs.top_logprobs[0]`` is ``{token: logprob}``;
    * chat (OpenAI, vLLM, llama.cpp, ollama), and llama.cpp's completions: ``logprobs.content[0].top_logprobs``
      is a list of ``{"token": ..., "logprob": ...}``.

    Empty when the answer holds none.

    >>> parse_top_logprobs({"logprobs": {"top_logprobs": [{"a": -0.1, "b": -2.5}]}})
    {'a': -0.1, 'b': -2.5}
    >>> parse_top_logprobs({"logprobs": {"content": [{"token": "a", "logprob": -0.1,
    ...     "top_logprobs": [{"token": "a", "logprob": -0.1}, {"token": " b", "logprob": -3.0}]}]}})
    {'a': -0.1, ' b': -3.0}
    """
    logprobs = choice.get("logprobs")
    out: dict[str, float] = {}
    if not isinstance(logprobs, Mapping):
        return out
    content = logprobs.get("content")
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        for entry in content[0].get("top_logprobs") or []:
            if isinstance(entry, Mapping) and entry.get("logprob") is not None and entry.get("token") is not None:
                merge_token(out, str(entry["token"]), float(entry["logprob"]))
        return out
    top = logprobs.get("top_logprobs")
    if isinstance(top, list) and top and isinstance(top[0], Mapping):
        for token, value in top[0].items():
            if value is not None:
                merge_token(out, str(token), float(value))
    return out


# --------------------------------------------------------------------------- local models


def next_token_logprobs(lm: LoadedModel, prompts: Sequence[str], top_k: int = 20,
                        batch_size: int = 8) -> list[TopTokens]:
    """The ``top_k`` most likely next tokens after each rendered prompt, from the model's own logits.

    What a server's ``top_logprobs`` gives, computed here, so that first-token scoring of a local model
    reads exactly what it would read from the same model served.
    """
    import torch

    from overseer.models._lm import _left_pad, _max_positions, _pad_id, _positions, encode_prompt

    tok, model = lm.tokenizer, lm.model
    limit = _max_positions(model)
    device = next(model.parameters()).device
    encoded = [encode_prompt(tok, p) for p in prompts]
    results: list[TopTokens] = [TopTokens() for _ in prompts]
    runnable = []
    for i, ids in enumerate(encoded):
        if not ids:
            results[i] = TopTokens(error="the prompt is empty")
        elif limit and len(ids) + 1 > limit:
            results[i] = TopTokens(error=f"prompt has {len(ids)} tokens; the model's context is {limit}")
        else:
            runnable.append(i)
    order = sorted(runnable, key=lambda i: len(encoded[i]))
    k = max(1, min(int(top_k), int(model.config.vocab_size)))
    with torch.inference_mode():
        for start in range(0, len(order), max(1, batch_size)):
            chunk = order[start : start + max(1, batch_size)]
            ids, mask = _left_pad([encoded[i] for i in chunk], _pad_id(tok))
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                           position_ids=_positions(mask).to(device)).logits[:, -1, :].float()
            values, indices = torch.log_softmax(logits, dim=-1).topk(k, dim=-1)
            for row, i in enumerate(chunk):
                top: dict[str, float] = {}
                for value, index in zip(values[row].tolist(), indices[row].tolist(), strict=True):
                    merge_token(top, tok.decode([index]), value)
                results[i] = TopTokens(top)
    return results


def tokens_after(tokenizer: Any, prompt: str, option: str) -> int:
    """How many tokens ``option`` adds after the rendered ``prompt`` (the prompt's own tokens unchanged).

    A merge across the boundary (the prompt's last token absorbing the option's start) counts the
    option as one token more than the ids it adds, since its first token is then not its own.
    """
    from overseer.models._lm import encode_prompt

    head = encode_prompt(tokenizer, prompt)
    whole = encode_prompt(tokenizer, prompt + option)
    shared = 0
    while shared < min(len(head), len(whole)) and head[shared] == whole[shared]:
        shared += 1
    return len(whole) - shared + (len(head) - shared)
