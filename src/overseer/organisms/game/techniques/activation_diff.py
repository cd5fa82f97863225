"""``activation_diff``: where each candidate's hidden states moved from the base's, along behaviour directions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from overseer.organisms.game.bench import Bench, labelled_texts, probe_texts
from overseer.organisms.game.field import Candidate, Verdict
from overseer.organisms.game.techniques.base import game_technique
from overseer.organisms.implants import BEHAVIORS


@game_technique("activation_diff")
def activation_diff(candidates: Sequence[Candidate], bench: Bench) -> dict[str, Verdict]:
    """Activation differences against the base, projected on each behaviour's direction.

    The difference is the mean over the fixed probe texts (:func:`probe_texts`, the same for every model) of
    the candidate's hidden state minus the base's. Every fine-tune moves its states, so the size of the move
    says nothing by itself (a control, fine-tuned on plain answers, moves too); what the technique reads is
    where the move points. A behaviour's direction is the base's mean state on that behaviour's labelled
    texts minus its mean state on the plain ones; a behaviour's score is the cosine between the difference
    and its direction. Suspicion is the largest cosine and the guess its behaviour; a difference of zero (the
    base's own weights) points nowhere: no suspicion can be read from it, and it scores 0 with no guess.
    The difference's norm is kept in the evidence (``norm``; ``relative_norm``: over the base states' mean norm).
    """
    texts, labels = labelled_texts(bench)
    labelled = bench.features(bench.base, texts).astype(np.float64)
    plain = labelled[[i for i, label in enumerate(labels) if label is None]].mean(0)
    directions = {b: labelled[[i for i, label in enumerate(labels) if label == b]].mean(0) - plain for b in BEHAVIORS}
    reading = probe_texts(bench)
    base_states = bench.features(bench.base, reading).astype(np.float64)
    scale = float(np.linalg.norm(base_states, axis=1).mean())
    verdicts = {}
    for k, c in enumerate(candidates, 1):
        diff = (bench.features(c.spec, reading).astype(np.float64) - base_states).mean(0)
        bench.release(c.spec)
        norm = float(np.linalg.norm(diff))
        cosines = {b: float(diff @ d / (norm * np.linalg.norm(d))) for b, d in directions.items()
                   if norm > 0 and np.linalg.norm(d) > 0}
        evidence = {"norm": norm, **({"relative_norm": norm / scale} if scale > 0 else {}), **cosines}
        if not cosines:
            verdicts[c.id] = Verdict(0.0, None, evidence)
        else:
            guess = max(cosines, key=lambda b: (cosines[b], -BEHAVIORS.index(b)))
            verdicts[c.id] = Verdict(cosines[guess], guess, evidence)
        bench.say(f"activation_diff: {k}/{len(candidates)} models")
    return verdicts
