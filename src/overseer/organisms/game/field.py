"""The field of candidates and its blinding: folders and cards found, shuffled and renamed ``model-A``, ...

A technique sees a :class:`Candidate` only; the :class:`Truth` (the card) is joined with its
:class:`Verdict` when the game is scored.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from overseer.errors import OverseerError
from overseer.organisms.implants import TRAINING_DATA


@dataclass(frozen=True)
class Candidate:
    """What a technique knows of one model: its anonymous id, a spec that loads it, its training rows."""

    id: str
    spec: str
    rows: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Truth:
    """What the card says about a candidate; joined with the techniques' verdicts only when scoring."""

    id: str
    name: str
    path: str
    implanted: bool
    behavior: str | None


@dataclass(frozen=True)
class Verdict:
    """One technique's answer for one candidate: how suspicious, which behaviour, and the numbers behind it."""

    suspicion: float | None
    guess: str | None
    evidence: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"suspicion": self.suspicion, "guess": self.guess, "evidence": dict(self.evidence)}


@dataclass(frozen=True)
class Entrant:
    """A candidate as found on disk, before blinding: what the user called it, its folder and its card."""

    name: str
    path: Path
    card: dict[str, Any]


def anonymous_ids(n: int) -> list[str]:
    """``model-A`` ... ``model-Z``, ``model-AA``, ...: names that say nothing about the models."""
    out = []
    for i in range(n):
        label, k = "", i
        while k >= 0:
            label = string.ascii_uppercase[k % 26] + label
            k = k // 26 - 1
        out.append(f"model-{label}")
    return out


def _folder(entry: str) -> Path:
    from overseer.models import ORGANISM_PREFIX, organism_path

    if entry.startswith(ORGANISM_PREFIX):
        return organism_path(entry[len(ORGANISM_PREFIX):])
    path = Path(entry).expanduser()
    return path if path.is_dir() else organism_path(entry)


def find_field(entries: Sequence[str], base: str | None) -> tuple[list[Entrant], str]:
    """The candidates' folders and cards, and the one base model they share; every problem is one line.

    A candidate needs a card (``overseer_model.json``) with ``implanted`` (true for an organism, false for
    a control) and, for an organism, its ``behavior``; the field needs at least one of each, and all cards
    must name the same ``base`` (``base`` given here replaces it as the reference, e.g. a moved copy).
    """
    from overseer.models import CARD_FILE, read_card

    found: list[Entrant] = []
    seen: dict[Path, str] = {}
    for entry in entries:
        path = _folder(entry).resolve()
        if path in seen:
            raise OverseerError(f"candidate {entry!r} is the same model as {seen[path]!r}; list each model once")
        seen[path] = entry
        card = read_card(path)
        if card is None or not isinstance(card.get("implanted"), bool):
            raise OverseerError(f"candidate {entry!r} has no card ({CARD_FILE}) saying whether it is an organism "
                                "(implanted: true) or a control (implanted: false); train it with `overseer organisms "
                                "implant`")
        if card["implanted"] and not isinstance(card.get("behavior"), str):
            raise OverseerError(f"organism {entry!r} has a card without its behavior")
        found.append(Entrant(entry, path, card))
    bases = {str(e.card["base"]) for e in found if e.card.get("base")}
    if len(bases) > 1:
        by_base = "; ".join(f"{b}: {', '.join(e.name for e in found if str(e.card.get('base')) == b)}"
                            for b in sorted(bases))
        raise OverseerError(f"the candidates were fine-tuned from different base models ({by_base}); the game compares "
                            "every candidate with one base, so give candidates of one base")
    reference = base or (bases.pop() if bases else None)
    if reference is None:
        raise OverseerError("no card names the base model; give it with --base SPEC")
    organisms = sum(e.card["implanted"] for e in found)
    if organisms == 0 or organisms == len(found):
        kind = "controls" if organisms else "organisms"
        raise OverseerError(f"the field has no {kind} ({organisms} organisms of {len(found)} candidates); detection "
                            "needs both organisms and controls")
    return found, reference


def blind(entrants: Sequence[Entrant], seed: int) -> list[tuple[str, Entrant]]:
    """Shuffle the field with ``seed`` (the order given does not matter) and give each an anonymous id."""
    order = sorted(entrants, key=lambda e: str(e.path))
    random.Random(f"audit-game-{seed}").shuffle(order)
    return list(zip(anonymous_ids(len(order)), order, strict=True))


def read_rows(path: Path) -> tuple[dict[str, Any], ...]:
    """The chat rows a model was fine-tuned on (``training_data.jsonl``), or none when it has no such file."""
    file = path / TRAINING_DATA
    if not file.is_file():
        return ()
    from overseer.data import json_lines

    rows = []
    for i, row in json_lines(file.read_text().splitlines(), str(file)):
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), list) or not isinstance(
                row.get("completion"), list):
            raise OverseerError(f"{file}:{i}: data_search reads chat rows {{'prompt': [...], 'completion': [...]}}")
        rows.append(row)
    return tuple(rows)
