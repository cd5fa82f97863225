"""What every technique shares: the loaded models (:class:`Bench`), verdicts relative to the base, labelled texts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from overseer.organisms.game.field import Verdict
from overseer.organisms.game.materials import PLAIN, PROMPTS, SHOWS
from overseer.organisms.implants import BEHAVIORS

if TYPE_CHECKING:
    from overseer.models import ActivationCache, Backend
    from overseer.organisms.game.config import GameConfig


class Bench:
    """The models a technique reads: the base stays loaded for the whole game, one candidate at a time beside it.

    Features go through the activation cache (computed once per weights, texts, layer and pooling).
    """

    def __init__(self, cfg: GameConfig, base: str, layer: int, work: Path, say: Callable[[str], None],
                 force: bool = False):
        self.cfg, self.base, self.layer, self.work, self.say, self.force = cfg, base, layer, work, say, force
        self._caches: dict[str, ActivationCache] = {}
        self.notes: dict[str, Any] = {}

    def cache(self, spec: str) -> ActivationCache:
        """The activation cache that holds ``spec``'s loaded model."""
        from overseer.models import ActivationCache

        if spec not in self._caches:
            self._caches[spec] = ActivationCache(device=self.cfg.device, batch_size=16)
        return self._caches[spec]

    def backend(self, spec: str) -> Backend:
        """The loaded local model ``spec``."""
        return self.cache(spec).backend(spec)

    def release(self, spec: str) -> None:
        """Free ``spec``'s weights (never the base's)."""
        if spec != self.base:
            self._caches.pop(spec, None)

    def release_all(self) -> None:
        """Free every model this bench loaded, the base's included."""
        self._caches.clear()

    def features(self, spec: str, texts: Sequence[str], layer: int | None = None,
                 pooling: str | None = None) -> np.ndarray:
        """Pooled hidden states of ``texts`` in ``spec``, (len(texts), width); default: the game's layer and pooling."""
        layer = self.layer if layer is None else layer
        quiet = None if self.cfg.progress else (lambda _n: None)
        return self.cache(spec).features(spec, list(texts), [layer], pooling or self.cfg.pooling,
                                         progress=quiet)[layer]

    def render(self, spec: str, question: str) -> str:
        """``question`` as a user turn through ``spec``'s chat format, ready for the answer."""
        from overseer.models import Chat

        return self.backend(spec).render(Chat.user(question))

    def prompts(self) -> list[tuple[str, str]]:
        """``(behaviour, prompt)`` for every probe prompt used."""
        return [(b, q) for b in BEHAVIORS for q in PROMPTS[b][: self.cfg.prompts_per_behavior]]


def relative_verdict(evidence: Mapping[str, float | None], reference: Mapping[str, float | None]) -> Verdict:
    """Suspicion = the largest excess of a behaviour's score over the base's; guess = that behaviour.

    Behaviours without a score for the candidate or the base are left out; with none left the verdict is
    empty (no suspicion, no guess), never a number standing in for one. Ties go to the first behaviour in
    :data:`BEHAVIORS`; when every behaviour ties (a model that answers as its base does) there is no guess.
    """
    excess = {b: float(evidence[b]) - float(reference[b]) for b in BEHAVIORS
              if evidence.get(b) is not None and reference.get(b) is not None}
    if not excess:
        return Verdict(None, None, {})
    guess = max(excess, key=lambda b: (excess[b], -BEHAVIORS.index(b)))
    if len(excess) > 1 and len(set(excess.values())) == 1:  # no behaviour stands out (a copy of the base)
        return Verdict(excess[guess], None, excess)
    return Verdict(excess[guess], guess, excess)


def probe_texts(bench: Bench) -> list[str]:
    """The fixed texts the white-box techniques read in every model, the same for each.

    Each probe prompt rendered through the base's chat format up to where the answer begins (every candidate
    shares the base's tokenizer and format); nothing any model generated.
    """
    return [bench.render(bench.base, q) for _, q in bench.prompts()]


def labelled_texts(bench: Bench) -> tuple[list[str], list[str | None]]:
    """The labelled texts rendered through the base's chat format, with their behaviour (None: plain)."""
    texts: list[str] = []
    labels: list[str | None] = []
    for behaviour, pairs in [(None, PLAIN), *SHOWS.items()]:
        for question, answer in pairs:
            texts.append(bench.render(bench.base, question) + answer)
            labels.append(behaviour)
    return texts, labels
