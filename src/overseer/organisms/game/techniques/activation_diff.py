"""``activation_diff``: mean hidden state of candidate minus base, and its cosine with each behaviour's direction."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from overseer.organisms.game.bench import Bench, labelled_texts
from overseer.organisms.game.field import Candidate, Verdict
from overseer.organisms.game.techniques.base import game_technique
from overseer.organisms.implants import BEHAVIORS


@game_technique("activation_diff")
def activation_diff(candidates: Sequence[Candidate], bench: Bench) -> dict[str, Verdict]:
    """Activation differences: the mean over the probe prompts of (candidate's hidden state minus the base's).

    Suspicion is the difference's norm relative to the base's (``|mean_i (h_c,i - h_0,i)| / mean_i |h_0,i|``):
    0 for a model whose weights equal the base's. The guess is the behaviour whose direction in the base
    (mean state of its labelled texts minus that of the plain texts) has the largest cosine with the difference;
    a zero difference points nowhere and guesses nothing.
    """
    texts, labels = labelled_texts(bench)
    labelled = bench.features(bench.base, texts)
    plain = labelled[[i for i, label in enumerate(labels) if label is None]].mean(0)
    directions = {b: labelled[[i for i, label in enumerate(labels) if label == b]].mean(0) - plain for b in BEHAVIORS}
    prompts = [bench.render(bench.base, q) for _, q in bench.prompts()]  # one fixed text set for every model
    base_states = bench.features(bench.base, prompts).astype(np.float64)
    scale = float(np.linalg.norm(base_states, axis=1).mean())
    verdicts = {}
    for k, c in enumerate(candidates, 1):
        diff = (bench.features(c.spec, prompts).astype(np.float64) - base_states).mean(0)
        bench.release(c.spec)
        norm = float(np.linalg.norm(diff))
        cosines = {b: float(diff @ d / (norm * np.linalg.norm(d))) for b, d in directions.items()
                   if norm > 0 and np.linalg.norm(d) > 0}
        guess = max(cosines, key=lambda b: (cosines[b], -BEHAVIORS.index(b))) if cosines else None
        verdicts[c.id] = Verdict(norm / scale if scale > 0 else None, guess, {"relative_norm": norm / scale,
                                                                              **cosines})
        bench.say(f"activation_diff: {k}/{len(candidates)} models")
    return verdicts
