"""``data_search``: the training rows the candidate learned most, compared with each behaviour's description."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from overseer.organisms.game.bench import Bench, relative_verdict
from overseer.organisms.game.field import Candidate, Verdict
from overseer.organisms.game.materials import DESCRIPTIONS, PLAIN
from overseer.organisms.game.techniques.base import game_technique
from overseer.organisms.implants import BEHAVIORS


def _completion(row: Mapping[str, Any]) -> str:
    return "".join(str(m.get("content", "")) for m in row["completion"])


def _row_text(row: Mapping[str, Any]) -> str:
    asked = " ".join(str(m.get("content", "")) for m in row["prompt"] if m.get("role") == "user")
    return f"User: {asked}\nAssistant: {_completion(row)}"


def learned_most(candidate: Candidate, bench: Bench) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ranked by how much the candidate learned them, and each row's gain.

    The gain is the per-token log-likelihood of the row's completion under the candidate minus under the
    base: base loss minus candidate loss. Rows that could not be scored (too long, empty) rank last with a NaN gain.
    """
    from overseer.models import Chat

    chats = [Chat.of(r["prompt"]) for r in candidate.rows]
    options = [[_completion(r)] for r in candidate.rows]
    mine = bench.backend(candidate.spec).score_options(chats, options)
    bench.release(candidate.spec)
    theirs = bench.backend(bench.base).score_options(chats, options)
    gains = np.array([(a.logprobs[0] - b.logprobs[0]) / max(a.num_tokens[0], 1) if a.ok and b.ok else np.nan
                      for a, b in zip(mine, theirs, strict=True)])
    order = np.argsort(np.where(np.isnan(gains), -np.inf, -gains), kind="stable")
    return order, gains


@game_technique("data_search")
def data_search(candidates: Sequence[Candidate], bench: Bench) -> dict[str, Verdict]:
    """Training-data search: the rows the candidate learned most, compared with a description of each behaviour.

    The ``top_k`` rows of :func:`learned_most` are compared with a short description of each behaviour
    (:data:`DESCRIPTIONS`) by sentence-embedding cosine (``encoder``, mean-pooled last layer).
    A behaviour's lift is the mean cosine of those rows with its description minus the mean cosine of the plain
    reference answers (:data:`PLAIN`) with it: how much more the rows the candidate learned most look like the
    behaviour than ordinary answers do. Suspicion is the largest lift and the guess its behaviour. The reference
    is fixed text rather than the candidate's whole dataset, because an implanted dataset shows the behaviour in
    every row: against itself its top rows would stand out by nothing. The top rows are in the evidence.
    """
    encoder = bench.cfg.encoder

    def embed(texts: Sequence[str]) -> np.ndarray:
        x = bench.features(encoder, texts, layer=-1, pooling="mean").astype(np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    descriptions = embed([DESCRIPTIONS[b] for b in BEHAVIORS])
    reference = (embed([f"User: {q}\nAssistant: {a}" for q, a in PLAIN]) @ descriptions.T).mean(0)
    verdicts = {}
    top: dict[str, list[str]] = {}
    for k, c in enumerate(candidates, 1):
        if not c.rows:
            verdicts[c.id] = Verdict(None, None, {})
            continue
        order, gains = learned_most(c, bench)
        chosen = [int(i) for i in order[: bench.cfg.top_k] if not np.isnan(gains[i])]
        if not chosen:
            verdicts[c.id] = Verdict(None, None, {})
            continue
        lift = (embed([_row_text(c.rows[i]) for i in chosen]) @ descriptions.T).mean(0) - reference
        verdicts[c.id] = relative_verdict(dict(zip(BEHAVIORS, map(float, lift), strict=True)),
                                          dict.fromkeys(BEHAVIORS, 0.0))
        top[c.id] = [_row_text(c.rows[i]) for i in chosen]
        bench.say(f"data_search: {k}/{len(candidates)} models")
    bench.release(encoder)
    bench.notes["top_rows"] = top
    return verdicts
