"""Guarded generation: what each defence shows the user for an exchange, and which stage fired.

Scores of every classifier are computed once per exchange (:func:`score_exchanges`); :func:`decide`
then turns them into what one defence shows, so evaluation compares every defence, threshold and
cascade setting on the same generations. :func:`guarded_generate` is the live path behind the ``guard``
backend: the input classifier runs before generation (a blocked request is never generated), the
others after it, and a cascade computes its second stage only for what the first escalates.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from overseer.errors import OverseerError
from overseer.guard.classifiers import DEFENCES, Exchange, GuardPolicy, TokenScores, cascade_decisions


@dataclass
class Scores:
    """Every classifier's scores for one exchange: a probability per sequence classifier, per-token ones otherwise."""

    sequence: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, TokenScores] = field(default_factory=dict)

    def of(self, name: str) -> float:
        """The sequence-level score of ``name`` (token classifiers: their highest per-token score)."""
        if name in self.tokens:
            return self.tokens[name].max
        return self.sequence[name]


@dataclass(frozen=True)
class Outcome:
    """What a defence did with one exchange.

    ``shown`` is the text the user gets; ``blocked`` is a whole-exchange refusal, ``halted_at`` the index of
    the token at which a stream stopped (``shown`` ends before it), ``stage`` the classifier that fired
    (``cascade:<stage>`` for the cascade stage that decided), ``escalated`` whether a cascade escalated it.
    """

    shown: str
    blocked: bool = False
    halted_at: int | None = None
    stage: str | None = None
    escalated: bool = False

    @property
    def refused(self) -> bool:
        """True when the defence stopped the exchange (a block or a halt)."""
        return self.blocked or self.halted_at is not None


def needed(policy: GuardPolicy, defence: str) -> list[str]:
    """The classifiers a defence reads."""
    if defence not in DEFENCES:
        raise OverseerError(f"unknown defence {defence!r}; allowed: {', '.join(DEFENCES)}")
    if defence == "none":
        return []
    if defence == "ensemble":
        return list(policy.ensemble)
    if defence == "cascade":
        if policy.cascade is None:
            raise OverseerError("this guard policy has no cascade; pick another defence")
        return [policy.cascade.stage1, policy.cascade.stage2]
    return [defence]


def score_exchanges(policy: GuardPolicy, names: Sequence[str], items: Sequence[Exchange],
                    timings: dict[str, float] | None = None) -> list[Scores]:
    """Scores of the classifiers ``names`` for every exchange; ``timings`` collects seconds per classifier."""
    out = [Scores() for _ in items]
    for name in names:
        clf = policy.classifiers[name]
        start = time.perf_counter()
        if clf.is_token:
            for s, ts in zip(out, clf.token_scores(items), strict=True):
                s.tokens[name] = ts
        else:
            for s, v in zip(out, clf.sequence_scores(items), strict=True):
                s.sequence[name] = float(v)
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
    return out


def decide(policy: GuardPolicy, defence: str, response: str, scores: Scores,
           escalate_at: float | None = None) -> Outcome:
    """What ``defence`` shows for one exchange given its scores (``escalate_at`` overrides the cascade's)."""
    refusal = policy.refusal
    if defence == "none":
        return Outcome(response)
    if defence in ("input", "exchange"):
        clf = policy.classifiers[defence]
        if scores.of(defence) >= clf.threshold:
            return Outcome(refusal, blocked=True, stage=defence)
        return Outcome(response)
    if defence in ("output", "probe"):
        clf = policy.classifiers[defence]
        shown, halt = scores.tokens[defence].shown(response, clf.threshold)
        return Outcome(shown, halted_at=halt, stage=defence if halt is not None else None)
    if defence == "ensemble":
        mean = float(np.mean([scores.of(n) for n in policy.ensemble]))
        if mean >= policy.ensemble_threshold:
            return Outcome(refusal, blocked=True, stage="ensemble")
        return Outcome(response)
    if defence == "cascade":
        c = policy.cascade
        if c is None:
            raise OverseerError("this guard policy has no cascade; pick another defence")
        at = c.escalate_at if escalate_at is None else escalate_at
        s1, s2 = scores.of(c.stage1), scores.sequence.get(c.stage2)
        if s2 is None and c.stage2 in scores.tokens:
            s2 = scores.tokens[c.stage2].max
        blocked, escalated = cascade_decisions(np.array([s1]), policy.classifiers[c.stage1].threshold,
                                               np.array([s2 if s2 is not None else -np.inf]),
                                               policy.classifiers[c.stage2].threshold, at)
        stage = f"cascade:{c.stage2 if escalated[0] else c.stage1}"
        if blocked[0]:
            return Outcome(refusal, blocked=True, stage=stage, escalated=bool(escalated[0]))
        return Outcome(response, escalated=bool(escalated[0]))
    raise OverseerError(f"unknown defence {defence!r}; allowed: {', '.join(DEFENCES)}")


def generate_watched(policy: GuardPolicy, inner: Any, chats: Sequence[Any], config: Any,
                     seconds: dict[str, float], watch: bool = True) -> tuple[list[Any], list[TokenScores] | None]:
    """Generate through ``inner``; when the probe reads the same local model, read its states off this pass.

    Returns the first generation of each chat and, when read here, the probe's per-token scores
    (``seconds["probe"]`` then holds only the probe head's time; the states cost no extra forward pass).
    """
    probe = policy.classifiers.get("probe")
    start = time.perf_counter()
    if watch and probe is not None and probe.reads_generation(inner):
        from overseer.models import generate

        gens = generate(inner.loaded, [inner.render(c) for c in chats], config, inner.batch_size,
                        hidden_layers=probe.layers)
        seconds["generate"] = seconds.get("generate", 0.0) + time.perf_counter() - start
        start = time.perf_counter()
        scores = probe.scores_from_generation([g[0] for g in gens], inner.loaded.tokenizer)
        seconds["probe"] = seconds.get("probe", 0.0) + time.perf_counter() - start
        return [g[0] for g in gens], scores
    gens = inner.generate(list(chats), config) if chats else []
    seconds["generate"] = seconds.get("generate", 0.0) + time.perf_counter() - start
    return [g[0] for g in gens], None


def deployment_system(policy: GuardPolicy, chat: Any) -> str:
    """The system prompt a guarded exchange runs under: the policy's, then the chat's own (if it differs)."""
    own = "\n\n".join(m["content"] for m in chat.messages if m["role"] == "system")
    return policy.system_prompt if not own or own == policy.system_prompt else f"{policy.system_prompt}\n\n{own}"


@dataclass
class GuardedReply:
    """One live guarded reply: the outcome, the unguarded response (empty when never generated) and timings."""

    outcome: Outcome
    response: str
    seconds: dict[str, float]
    error: str | None = None


def guarded_generate(policy: GuardPolicy, inner: Any, chats: Sequence[Any], config: Any,
                     defence: str | None = None) -> list[GuardedReply]:
    """Generate through ``inner`` under ``defence`` (default: the policy's); one reply per chat.

    ``chats`` are :class:`~overseer.models.Chat` objects or plain strings (one user turn). The guarded
    model always runs under the policy's system prompt (the deployment it was calibrated in: the
    constitution's assistant, who holds the secrets); a chat's own system message comes after it.
    Requests the input classifier blocks are not generated; a cascade scores its second stage only on
    the exchanges its first stage escalates.
    """
    from overseer.models import Chat

    defence = defence or policy.defence
    names = needed(policy, defence)
    exchanges = []
    for chat in chats:
        if isinstance(chat, str):
            chat = Chat.user(chat)
        exchange = Exchange(tuple(dict(m) for m in chat.messages if m["role"] in ("user", "assistant"))
                            or ({"role": "user", "content": ""},), "", deployment_system(policy, chat))
        exchanges.append((exchange.chat(), exchange))
    seconds: dict[str, float] = {}
    open_idx = list(range(len(exchanges)))
    replies: list[GuardedReply | None] = [None] * len(exchanges)
    if "input" in names and defence == "input":
        scores = score_exchanges(policy, ["input"], [e for _, e in exchanges], seconds)
        for i, s in enumerate(scores):
            outcome = decide(policy, "input", "", s)
            if outcome.blocked:
                replies[i] = GuardedReply(outcome, "", seconds)
        open_idx = [i for i in open_idx if replies[i] is None]
    generations, probe_scores = generate_watched(policy, inner, [exchanges[i][0] for i in open_idx], config, seconds,
                                                 watch="probe" in names) if open_idx else ([], None)
    done = []
    for i, gen in zip(open_idx, generations, strict=True):
        if not gen.ok:  # nothing to guard: the item fails, as it would unguarded
            replies[i] = GuardedReply(Outcome(""), "", seconds, gen.error)
            continue
        done.append((i, Exchange(exchanges[i][1].turns, gen.text, exchanges[i][1].system)))
    if probe_scores is not None:
        ok = [k for k, gen in enumerate(generations) if gen.ok]
        probe_scores = [probe_scores[k] for k in ok]
    items = [e for _, e in done]

    def score(names_: Sequence[str], subset: Sequence[int]) -> list[Scores]:
        rest = [n for n in names_ if not (n == "probe" and probe_scores is not None)]
        out = score_exchanges(policy, rest, [items[k] for k in subset], seconds)
        if probe_scores is not None and "probe" in names_:
            for k, s in zip(subset, out, strict=True):
                s.tokens["probe"] = probe_scores[k]
        return out

    everyone = list(range(len(items)))
    if defence == "cascade" and policy.cascade is not None:
        c = policy.cascade
        first = score([c.stage1], everyone)
        escalate = [k for k, s in enumerate(first) if s.of(c.stage1) >= c.escalate_at]
        second = score([c.stage2], escalate)
        for k, s in zip(escalate, second, strict=True):
            first[k].sequence.update(s.sequence)
            first[k].tokens.update(s.tokens)
        scores = first
    elif defence != "input":
        scores = score(names, everyone)
    else:
        scores = [Scores(sequence={"input": -np.inf}) for _ in items]
    for (i, ex), s in zip(done, scores, strict=True):
        replies[i] = GuardedReply(decide(policy, defence, ex.response, s), ex.response, seconds)
    return [r for r in replies if r is not None]
