"""``probe``: linear probes trained on the base's activations of labelled texts, read in each candidate."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from overseer.organisms.game.bench import Bench, labelled_texts, relative_verdict
from overseer.organisms.game.field import Candidate, Verdict
from overseer.organisms.game.techniques.base import game_technique
from overseer.organisms.implants import BEHAVIORS


@game_technique("probe")
def probe(candidates: Sequence[Candidate], bench: Bench) -> dict[str, Verdict]:
    """White-box probes: linear probes trained in the base, read in each candidate's activations of its own answers.

    One logistic regression per behaviour is trained on the base's activations of the labelled texts (that
    behaviour's texts against the plain ones and the other behaviours'), then applied to each model's own
    activations of its own greedy answers to the probe prompts.
    A behaviour's score for a model is the probe's mean probability over that behaviour's probe prompts; the
    verdict is the largest excess over the base's (:func:`relative_verdict`). The probes transfer because the
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
    prompts = bench.prompts()

    def scores(spec: str) -> dict[str, float | None]:
        answers = bench.answers(spec, [q for _, q in prompts])
        feats = bench.features(spec, [bench.render(spec, q) + a for (_, q), a in zip(prompts, answers, strict=True)])
        out: dict[str, float | None] = {}
        for b in BEHAVIORS:
            rows = [i for i, (behaviour, _) in enumerate(prompts) if behaviour == b]
            out[b] = float(probes[b].predict_proba(feats[rows])[:, 1].mean()) if rows else None
        return out

    reference = scores(bench.base)
    verdicts = {}
    for k, c in enumerate(candidates, 1):
        verdicts[c.id] = relative_verdict(scores(c.spec), reference)
        bench.release(c.spec)
        bench.say(f"probe: {k}/{len(candidates)} models")
    return verdicts
