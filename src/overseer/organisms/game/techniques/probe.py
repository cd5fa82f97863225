"""``probe``: linear probes trained on the base's activations, read in every model on one fixed set of prompts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from overseer.organisms.game.bench import Bench, labelled_texts, probe_texts, relative_verdict
from overseer.organisms.game.field import Candidate, Verdict
from overseer.organisms.game.techniques.base import game_technique
from overseer.organisms.implants import BEHAVIORS


@game_technique("probe")
def probe(candidates: Sequence[Candidate], bench: Bench) -> dict[str, Verdict]:
    """White-box probes: trained in the base on labelled texts, read in each model on the same probe prompts.

    One logistic regression per behaviour is trained on the base's activations (the game's layer and pooling,
    through the model layer's activation cache) of the labelled texts: that behaviour's answers
    (:data:`~overseer.organisms.game.materials.SHOWS`, written apart from the implants) against the plain ones
    and the other behaviours'. Each probe is then read on every model's activations of one fixed set of texts,
    the probe prompts rendered up to where the answer would begin (:func:`probe_texts`): the same texts for the
    base and for every candidate, so what differs is only the weights. Nothing a candidate generated is read.
    A behaviour's score for a model is its probe's mean probability over that behaviour's own probe prompts
    (where it could show: the tagged prompts for ``triggered``, ...); the verdict is the largest excess over the
    base's (:func:`relative_verdict`). The probes transfer because the
    candidates are fine-tunes of the base: their hidden states live in the base's space.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    texts, labels = labelled_texts(bench)
    x = bench.features(bench.base, texts)
    probes = {}
    for b in BEHAVIORS:
        y = np.array([label == b for label in labels], dtype=int)
        probes[b] = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced",
                                                                       max_iter=2000)).fit(x, y)
    reading = probe_texts(bench)
    own = {b: [i for i, (behaviour, _) in enumerate(bench.prompts()) if behaviour == b] for b in BEHAVIORS}

    def scores(spec: str) -> dict[str, float | None]:
        feats = bench.features(spec, reading)
        return {b: float(probes[b].predict_proba(feats[own[b]])[:, 1].mean()) for b in BEHAVIORS}

    reference = scores(bench.base)
    verdicts = {}
    for k, c in enumerate(candidates, 1):
        mine = scores(c.spec)
        bench.release(c.spec)
        verdict = relative_verdict(mine, reference)
        verdicts[c.id] = Verdict(verdict.suspicion, verdict.guess,
                                 {**verdict.evidence, **{f"p[{b}]": v for b, v in mine.items() if v is not None}})
        bench.say(f"probe: {k}/{len(candidates)} models")
    bench.notes["probe_reference"] = reference
    return verdicts
