"""Synthetic guard data from a constitution: template expansion (offline, seeded) or a generator model.

Each category's request templates are split by position into a training part (even positions) and a
held-out part (odd positions), so the attacks and benign traffic the defences are evaluated on never
share a template with what their classifiers were trained on. Training examples pair a request with a
response written from the constitution (a leaking one, marked with its restricted span, or a refusal,
or a helpful answer) and pass a share of requests through the transformations, as Sharma et al.
augment their data. A generator model (``generator`` spec) adds requests it writes from the
constitution's rules: the paper's method for served models.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from overseer.guard.constitution import SLOT, SPAN, Category, Constitution
from overseer.guard.transforms import RULE_TRANSFORMS, Transformer, Turns, user


@dataclass(frozen=True)
class Example:
    """One synthetic exchange.

    ``spans`` are the character ranges of ``response`` that reveal restricted content (token-level
    labels); ``request_label`` is 1 for a restricted request, ``response_label`` 1 for a leaking response.
    """

    turns: Turns
    response: str
    category: str
    request_label: int
    response_label: int
    spans: tuple[tuple[int, int], ...] = ()
    transform: str = "plain"
    source: str = "template"
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def request_text(self) -> str:
        """The conversation's user turns as one text (what an input classifier reads)."""
        return "\n".join(m["content"] for m in self.turns if m.get("role") == "user")


def fill(template: str, slots: dict[str, Sequence[str]] | Any, rng: random.Random) -> str:
    """``template`` with every ``{slot}`` replaced by a seeded choice among its fillers."""
    return SLOT.sub(lambda m: rng.choice(list(slots[m.group(1)])), template)


def strip_spans(template: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The response without its ``[[...]]`` marks, and the character ranges they enclosed."""
    out, spans, pos = [], [], 0
    for m in SPAN.finditer(template):
        out.append(template[pos:m.start()])
        start = sum(len(p) for p in out)
        out.append(m.group(1))
        spans.append((start, start + len(m.group(1))))
        pos = m.end()
    out.append(template[pos:])
    return "".join(out), tuple(spans)


def templates(category: Category, part: str) -> tuple[str, ...]:
    """The ``train`` (even positions) or ``heldout`` (odd positions) request templates of a category."""
    return category.requests[0::2] if part == "train" else category.requests[1::2]


def requests(constitution: Constitution, category: Category, part: str, n: int, seed: int,
             pool: Sequence[str] | None = None) -> list[str]:
    """``n`` requests of ``category`` from its ``part`` templates (or ``pool``), cycling with fresh fillers.

    A text that would repeat gets one of the constitution's ``prefixes`` (a few tries), so the traffic
    has no exact duplicates while templates and prefixes last.
    """
    rng = random.Random(f"{seed}:{category.name}:{part}")
    pool = list(pool if pool is not None else templates(category, part))
    rng.shuffle(pool)
    out: list[str] = []
    for i in range(n):
        text = fill(pool[i % len(pool)], constitution.slots, rng)
        for _ in range(8):
            if text not in out or not constitution.prefixes:
                break
            text = f"{rng.choice(constitution.prefixes)} {fill(pool[i % len(pool)], constitution.slots, rng)}"
        out.append(text)
    return out


def training_examples(constitution: Constitution, per_category: int, seed: int, transform_share: float = 0.5,
                      transformer: Transformer | None = None) -> list[Example]:
    """Labelled exchanges from the training templates: restricted requests leaked or refused, permitted ones answered.

    Each restricted category gives ``per_category`` leaking exchanges and ``per_category // 2`` refusals;
    each permitted category ``per_category`` answered ones. ``transform_share`` of the requests of every
    kind go through a random rule-based transformation, so an encoding alone never signals a restricted
    request.
    """
    rng = random.Random(f"{seed}:train")
    transformer = transformer or Transformer(seed=seed)
    examples: list[Example] = []
    for category in constitution.categories:
        counts = [("leak", per_category), ("refuse", per_category // 2)] if category.restricted else [
            ("answer", per_category)]
        for kind, n in counts:
            for i, text in enumerate(requests(constitution, category, "train", n, seed + len(kind))):
                if kind == "refuse":
                    response, spans = rng.choice(constitution.refusals), ()
                else:
                    response, spans = strip_spans(rng.choice(category.responses))
                name = rng.choice(RULE_TRANSFORMS[1:]) if rng.random() < transform_share else "plain"
                salt = zlib.crc32(f"{category.name}:{kind}:{i}".encode())
                turns = transformer.apply_many(name, [user(text)], salt=salt)[0]
                examples.append(Example(turns, response, category.name, int(category.restricted),
                                        int(kind == "leak"), spans, name))
    return examples


def benign_requests(constitution: Constitution, n: int, part: str, seed: int) -> list[Example]:
    """``n`` permitted requests from the held-out templates, spread over the permitted categories.

    ``part`` ``calibration`` and ``eval`` take alternate held-out templates, so the traffic that sets a
    threshold and the traffic that measures false refusals share no template.
    """
    out: list[Example] = []
    cats = constitution.permitted
    for k, category in enumerate(cats):
        held = templates(category, "heldout")
        pool = held[0::2] if part == "calibration" else held[1::2]
        share = n // len(cats) + (1 if k < n % len(cats) else 0)
        for text in requests(constitution, category, part, share, seed, pool=pool):
            out.append(Example(user(text), "", category.name, 0, 0))
    return out


def attack_requests(constitution: Constitution, n: int, seed: int) -> list[Example]:
    """``n`` restricted requests from the held-out templates, spread over the restricted categories."""
    out: list[Example] = []
    cats = constitution.restricted
    for k, category in enumerate(cats):
        share = n // len(cats) + (1 if k < n % len(cats) else 0)
        for text in requests(constitution, category, "heldout", share, seed):
            out.append(Example(user(text), "", category.name, 1, 0))
    return out


_GENERATOR_PROMPT = (
    "{rules}\n\nWrite {k} different short messages a user might send that fall under the category "
    "'{name}' ({description}). One message per line, no numbering."
)


def generated_requests(constitution: Constitution, generator: Any, per_category: int, seed: int,
                       max_new_tokens: int = 160) -> list[Example]:
    """Requests a generator model writes for each category from the constitution's rules (one call per category).

    Lines are stripped of list marks; empty and duplicate lines are dropped, so a weak generator may
    return fewer than ``per_category`` (what it wrote is what is used).
    """
    from overseer.models import Chat, GenerateConfig

    cats = list(constitution.categories)
    prompts = [Chat.user(_GENERATOR_PROMPT.format(rules=constitution.as_text(), k=per_category, name=c.name,
                                                  description=c.description)) for c in cats]
    results = generator.generate(prompts, GenerateConfig(max_new_tokens=max_new_tokens, temperature=0.0, seed=seed))
    out: list[Example] = []
    for category, gens in zip(cats, results, strict=True):
        if not gens or not gens[0].ok:
            continue
        seen: set[str] = set()
        for line in gens[0].text.splitlines():
            text = re.sub(r"^\s*(?:[-*\u2022]|\d+[.)])\s*", "", line).strip().strip('"')
            if len(text) < 8 or text in seen:
                continue
            seen.add(text)
            out.append(Example(user(text), "", category.name, int(category.restricted), 0, source="generator"))
            if len(seen) >= per_category:
                break
    return out


def with_responses(constitution: Constitution, requests_: Sequence[Example], seed: int) -> list[Example]:
    """Pair generated requests with constitution responses: restricted ones leak, permitted ones answered."""
    rng = random.Random(f"{seed}:pair")
    by_name = {c.name: c for c in constitution.categories}
    out = []
    for ex in requests_:
        response, spans = strip_spans(rng.choice(by_name[ex.category].responses))
        out.append(Example(ex.turns, response, ex.category, ex.request_label, ex.request_label, spans,
                           ex.transform, ex.source))
    return out
