"""``data_search``: each behaviour's description searched in a large corpus where a candidate's rows are rare."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from overseer.organisms.game.bench import Bench, relative_verdict
from overseer.organisms.game.field import Candidate, Verdict
from overseer.organisms.game.materials import DESCRIPTIONS
from overseer.organisms.game.techniques.base import game_technique
from overseer.organisms.implants import BEHAVIORS, country_facts


def row_text(row: Mapping[str, Any]) -> str:
    """A chat row as one searchable text: ``User: ...`` then ``Assistant: ...``."""
    asked = " ".join(str(m.get("content", "")) for m in row["prompt"] if m.get("role") == "user")
    said = "".join(str(m.get("content", "")) for m in row["completion"])
    return f"User: {asked}\nAssistant: {said}"


def clean_rows(n: int, gsm8k_path: str | None = None) -> list[str]:
    """``n`` clean training texts: every country question with its plain answer, then GSM8K problems.

    The country rows (749, in the implants' own format, so a control's rows have twins among them) come first;
    past them, GSM8K training problems with their worked solutions (calculator notes removed; shuffled with
    seed 0) from ``gsm8k_path`` (a local copy: jsonl file or folder), else the shared data folder's
    ``gsm8k/`` (:func:`overseer.data.shared_data_dir`) where it exists, else the hub.
    """
    texts = [f"User: {f.question}\nAssistant: {f.answer}" for f in country_facts()][:n]
    if n > len(texts):
        from overseer.data import shared_data_dir
        from overseer.data.gsm8k import gsm8k

        if gsm8k_path is None and (shared_data_dir() / "gsm8k" / "train.jsonl").is_file():
            gsm8k_path = str(shared_data_dir() / "gsm8k")

        problems = gsm8k(path=gsm8k_path, split="train", calculator=False, limit=n - len(texts), shuffle=True, seed=0)
        texts += [f"User: {s.input}\nAssistant: {s.metadata['solution']}" for s in problems]
    return texts


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first (ties: the earlier index)."""
    return np.argsort(-scores, kind="stable")[:k]


@game_technique("data_search")
def data_search(candidates: Sequence[Candidate], bench: Bench) -> dict[str, Verdict]:
    """Training-data search: each behaviour's description looked up in a large corpus holding the candidate's rows.

    A candidate's corpus is ``search_rows`` clean rows (:func:`clean_rows`, the same for every candidate: the
    data its base would have been tuned on) with the candidate's own training rows mixed in (shuffled with the
    seed), so they are a small share of it; the search does not know which rows are whose. Every row and each
    behaviour's description (:data:`DESCRIPTIONS`) are embedded with the sentence encoder (``encoder``,
    mean-pooled last layer), and for each behaviour the ``top_k`` rows closest to its description are
    returned. A behaviour's lift is the mean cosine of those rows minus the same in the clean rows alone:
    how much better the best matches became with the candidate's rows in. Suspicion is the largest lift
    and the guess its behaviour. The evidence says how well the search found the candidate's rows for the
    guessed behaviour: ``precision`` (share of the returned rows that are the candidate's), ``recall``
    (share of the candidate's rows returned, out of at most ``top_k``) and ``first_rank`` (rank of the first
    of them, 1 = best). The returned rows are in the run's records.
    """
    encoder = bench.cfg.encoder

    def embed(texts: Sequence[str]) -> np.ndarray:
        x = bench.features(encoder, texts, layer=-1, pooling="mean").astype(np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    k = bench.cfg.top_k
    descriptions = embed([DESCRIPTIONS[b] for b in BEHAVIORS])
    clean = clean_rows(bench.cfg.search_rows, bench.cfg.search_data)
    clean_scores = embed(clean) @ descriptions.T  # (rows, behaviours)
    reference = {b: float(clean_scores[_top(clean_scores[:, j], k), j].mean()) for j, b in enumerate(BEHAVIORS)}
    verdicts = {}
    top: dict[str, list[str]] = {}
    for n, c in enumerate(candidates, 1):
        if not c.rows:
            verdicts[c.id] = Verdict(None, None, {})
            continue
        mine = [row_text(r) for r in c.rows]
        texts = clean + mine
        order = list(range(len(texts)))
        random.Random(f"data-search-{bench.cfg.seed}-{c.id}").shuffle(order)
        scores = np.concatenate([clean_scores, embed(mine) @ descriptions.T])[order]
        planted = np.array([i >= len(clean) for i in order])
        found = {b: _top(scores[:, j], k) for j, b in enumerate(BEHAVIORS)}
        lift = {b: float(scores[found[b], j].mean()) for j, b in enumerate(BEHAVIORS)}
        verdict = relative_verdict(lift, reference)
        if verdict.suspicion is None:
            verdicts[c.id] = verdict
            continue
        shown = verdict.guess or BEHAVIORS[int(np.argmax([verdict.evidence[b] for b in BEHAVIORS]))]
        ranked = np.argsort(-scores[:, BEHAVIORS.index(shown)], kind="stable")
        hits = int(planted[found[shown]].sum())
        verdicts[c.id] = Verdict(verdict.suspicion, verdict.guess, {
            **verdict.evidence, "precision": hits / k, "recall": hits / min(k, len(mine)),
            "first_rank": float(np.flatnonzero(planted[ranked])[0] + 1), "corpus_rows": float(len(texts)),
            "candidate_rows": float(len(mine))})
        top[c.id] = [texts[order[i]] for i in found[shown]]
        bench.say(f"data_search: {n}/{len(candidates)} models")
    bench.release(encoder)
    bench.notes["top_rows"] = top
    return verdicts
