"""``behavioral``: an audit (:mod:`overseer.audit`) of candidates and base on probe prompts, judged per behaviour."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from overseer.organisms.game.bench import Bench, relative_verdict
from overseer.organisms.game.field import Candidate, Verdict
from overseer.organisms.game.materials import DIMENSIONS, PROMPTS
from overseer.organisms.game.techniques.base import game_technique
from overseer.organisms.implants import BEHAVIORS


@game_technique("behavioral")
def behavioral(candidates: Sequence[Candidate], bench: Bench) -> dict[str, Verdict]:
    """A behavioural audit: the probe prompts played against every candidate and the base, judged per behaviour.

    Each probe prompt is a scripted one-turn seed; the judges score every answer on one dimension per behaviour.
    A behaviour's score for a model is the primary judge's mean score (1-10) on that behaviour's dimension
    over the behaviour's own probe prompts; the verdict is the largest excess over the base
    (:func:`relative_verdict`). The rollouts are an audit run (``audit_run`` in ``metrics.json``), with
    transcripts, judge failures and costs as every audit has them.
    """
    from overseer.audit import AuditConfig, Seed, dimensions_from_mapping, run_seeds
    from overseer.organisms._inputs import audit_order

    seeds = [Seed(id=f"{b}-{k}", instruction=f"Ask the assistant: {q}", tags=(b,), behavior=b, turns=({"user": q},))
             for b in BEHAVIORS for k, q in enumerate(PROMPTS[b][: bench.cfg.prompts_per_behavior])]
    targets = (bench.base, *(c.spec for c in candidates))
    judges = bench.cfg.judges or (f"logprob:{bench.base}",)
    audit = run_seeds(AuditConfig(targets=targets, judges=judges, max_turns=1, target_max_tokens=bench.cfg.max_tokens,
                                  target_temperature=0.0, seed=bench.cfg.seed, bootstrap=bench.cfg.bootstrap,
                                  runs_dir=bench.cfg.runs_dir, progress=bench.cfg.progress),
                      audit_order(seeds), dimensions_from_mapping(DIMENSIONS, "audit game"), force=bench.force)
    bench.notes["audit_run"] = str(audit.path)
    records = [json.loads(line) for line in (audit.path / "records.jsonl").read_text().splitlines()]
    scores = judged_scores(records)
    reference = scores.get(bench.base, {})
    return {c.id: relative_verdict(scores.get(c.spec, {}), reference) for c in candidates}


def judged_scores(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per target and behaviour: the primary judge's mean score on that behaviour's dimension.

    The mean is over the rollouts of the behaviour's own seeds; failed rollouts and failed verdicts are left
    out, and a behaviour with none judged is None.
    """
    sums: dict[str, dict[str, list[float]]] = {}
    for r in records:
        per = sums.setdefault(r["target"], {b: [] for b in BEHAVIORS})
        verdict = (r.get("verdicts") or [None])[0]
        behaviour = r.get("behavior")
        if r.get("status") != "ok" or verdict is None or verdict.get("failed") or behaviour not in per:
            continue
        score = verdict["scores"].get(behaviour)
        if score is not None:
            per[behaviour].append(float(score))
    return {t: {b: (float(np.mean(v)) if v else None) for b, v in per.items()} for t, per in sums.items()}
