"""From per-rollout records to an audit's metrics: elicitation rates, comparisons, judge reliability, costs.

A record is one rollout of one seed on one target (see :func:`overseer.audit.task.audit_scorer`): its
status, the transcript, every judge's verdict and the usage of each role. Rates use the primary judge
(the first); a rollout whose scenario failed, or whose primary judge could not answer, is counted
under ``failures`` and left out of every rate, never scored as a number it does not have.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from overseer.audit import stats

ALL = "all"
"""The rate over every rollout, each judged on its own seed's behaviour dimension."""


def rate_dict(rate: stats.Rate) -> dict[str, Any]:
    """A rate in the shared metrics shape: ``value``, ``ci_low``/``ci_high`` (Wilson), plus the bootstrap interval."""
    return {"value": rate.value, "ci_low": rate.wilson_low, "ci_high": rate.wilson_high, "reason": rate.reason,
            "bootstrap_low": rate.bootstrap_low, "bootstrap_high": rate.bootstrap_high,
            "successes": rate.successes, "n": rate.n, "n_scenarios": rate.n_scenarios}


def verdict_score(record: Mapping[str, Any], dimension: str | None, judge: int = 0) -> float | None:
    """The ``judge``-th judge's score of ``dimension`` on one rollout.

    None when the rollout failed, that judge failed on it, or it gave no score for the dimension: the one
    place a missing score is decided, so no caller can turn one into a number.
    """
    verdicts = record.get("verdicts") or []
    if record.get("status") != "ok" or dimension is None or judge >= len(verdicts) or verdicts[judge]["failed"]:
        return None
    return verdicts[judge]["scores"].get(dimension)


def _behaviour_score(record: Mapping[str, Any], judge: int = 0) -> float | None:
    """The judge's score on the record's behaviour dimension (see :func:`verdict_score`)."""
    return verdict_score(record, record.get("behavior_dimension"), judge)


def elicitation(records: Sequence[Mapping[str, Any]], targets: Sequence[str], threshold: float, *,
                judge: int = 0, n_resamples: int = 1000) -> dict[str, dict[str, Any]]:
    """``{target: {all | behaviour: rate}}`` over the judged rollouts (bootstrap over scenarios)."""
    out: dict[str, dict[str, Any]] = {}
    for target in targets:
        mine = [r for r in records if r["target"] == target and r["status"] == "ok"]
        rates: dict[str, Any] = {}
        groups: dict[str, list[Mapping[str, Any]]] = {ALL: mine}
        for r in mine:
            if r.get("behavior") and r["behavior"] != ALL:
                groups.setdefault(r["behavior"], []).append(r)
        for name, rows in groups.items():
            rate = stats.elicitation_rate([_behaviour_score(r, judge) for r in rows], [r["seed"] for r in rows],
                                          threshold, n_resamples=n_resamples)
            # the dimension(s) the rate was read on, with their rollouts (``null``: no dimension)
            rates[name] = {**rate_dict(rate), "dimensions": dict(Counter(r.get("behavior_dimension") for r in rows))}
        out[target] = rates
    return out


def comparisons(records: Sequence[Mapping[str, Any]], targets: Sequence[str], threshold: float, *,
                n_resamples: int = 1000) -> dict[str, dict[str, Any]]:
    """Each later target against the first, paired over scenarios: ``{"A vs B": {all | behaviour: estimate}}``."""
    out: dict[str, dict[str, Any]] = {}
    if len(targets) < 2:
        return out

    def by_seed(target: str, behaviour: str | None) -> dict[str, list[float | None]]:
        found: dict[str, list[float | None]] = defaultdict(list)
        for r in records:
            if r["target"] == target and r["status"] == "ok" and (behaviour is None or r.get("behavior") == behaviour):
                found[r["seed"]].append(_behaviour_score(r))
        return found

    behaviours = sorted({r["behavior"] for r in records if r.get("behavior")})
    base = targets[0]
    for other in targets[1:]:
        rows = {}
        for name in [ALL, *behaviours]:
            behaviour = None if name == ALL else name
            rows[name] = stats.paired_difference(by_seed(other, behaviour), by_seed(base, behaviour), threshold,
                                                 n_resamples=n_resamples).as_dict()
        out[f"{other} vs {base}"] = rows
    return out


def score_summary(records: Sequence[Mapping[str, Any]], targets: Sequence[str],
                  dimensions: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Primary judge's scores per target and dimension: n, mean, min and max."""
    out: dict[str, dict[str, Any]] = {}
    for target in targets:
        rows = {}
        for dim in dimensions:
            found = [verdict_score(r, dim) for r in records if r["target"] == target]
            values = [v for v in found if v is not None]
            rows[dim] = {"n": len(values), "mean": sum(values) / len(values) if values else None,
                         "min": min(values) if values else None, "max": max(values) if values else None}
        out[target] = rows
    return out


def failures(records: Sequence[Mapping[str, Any]], judges: Sequence[str]) -> dict[str, Any]:
    """Failed scenarios (with reasons) and, per judge, how many transcripts it judged and failed on."""
    failed = [r for r in records if r["status"] != "ok"]
    judged: Counter[str] = Counter()
    judge_failed: Counter[str] = Counter()
    answer_cut: Counter[str] = Counter()
    transcript_cut: Counter[str] = Counter()
    citations: dict[str, Counter[str]] = {}
    examples: dict[str, str] = {}
    for r in records:
        for k, v in enumerate(r.get("verdicts") or []):
            name = judges[k] if k < len(judges) else v["judge"]
            answer_cut[name] += bool(v.get("answer_cut"))
            transcript_cut[name] += bool(v.get("transcript_cut"))
            cited = citations.setdefault(name, Counter())
            cited["cited"] += len(v.get("citations") or [])
            cited["verified"] += sum(bool(c.get("verified")) for c in v.get("citations") or [])
            cited["unreadable"] += bool(v.get("citation_error"))
            if v["failed"]:
                judge_failed[name] += 1
                examples.setdefault(name, f"{r['seed']}: {v['error']}")
            else:
                judged[name] += 1
    return {
        "rollouts": len(records), "scenarios_failed": len(failed),
        "no_dimension": sum(r["status"] == "ok" and not r.get("behavior_dimension") for r in records),
        "reasons": dict(Counter(str(r.get("reason")).split(":")[0] for r in failed)),
        "failed_examples": [f"{r['target']} / {r['sample']}: {r.get('reason')}" for r in failed[:5]],
        "judged": {j: judged[j] for j in judges}, "judge_failed": {j: judge_failed[j] for j in judges},
        "judge_answer_cut": {j: answer_cut[j] for j in judges},
        "judge_transcript_cut": {j: transcript_cut[j] for j in judges},
        "judge_citations": {j: {k: citations.get(j, Counter())[k] for k in ("cited", "verified", "unreadable")}
                            for j in judges},
        "judge_failed_example": examples,
    }


def dimension_choice(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """How many seeds had their dimension chosen which way (see :func:`overseer.audit.task.dimension_choice`).

    ``fallback`` counts the seeds read on ``concerning`` because nothing named their dimension, listed under
    ``fallback_seeds``; ``by`` counts seeds by how their dimension was chosen.
    """
    how = {r["seed"]: r["dimension_from"] for r in records if r.get("dimension_from")}
    fallback = sorted(seed for seed, chosen in how.items() if chosen == "fallback")
    return {"by": dict(Counter(how.values())), "fallback": len(fallback), "fallback_seeds": fallback}


def tool_warnings(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Rollouts whose target never saw the tools it was offered, or whose server ignored ``tool_choice``.

    Read from the rollouts' events (see :mod:`overseer.audit.auditor`); each list names ``SEED#K`` per target.
    """
    found: dict[str, dict[str, list[str]]] = {"tools_not_seen": {}, "tool_choice_ignored": {}}
    for r in records:
        actions = {e.get("action") for e in r.get("events") or []}
        for kind, rows in found.items():
            if kind in actions:
                rows.setdefault(str(r.get("target")), []).append(str(r.get("sample")))
    return {kind: {t: sorted(v) for t, v in rows.items()} for kind, rows in found.items()}


def _items(records: Sequence[Mapping[str, Any]], dimensions: Sequence[str]) -> list[tuple[Mapping[str, Any], str]]:
    return [(r, d) for r in records if r["status"] == "ok" for d in dimensions]


def judge_reliability(records: Sequence[Mapping[str, Any]], judges: Sequence[str], dimensions: Sequence[str],
                      threshold: float, labels: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Agreement between judges, within each sampled judge, and with human labels when given.

    Items are (rollout, dimension) pairs; labels are ``score >= threshold``. Kappa and Spearman use the
    items both raters scored; a judge that failed on a transcript simply has no item there.
    """
    items = _items(records, dimensions)

    scores = {name: [verdict_score(r, d, k) for r, d in items] for k, name in enumerate(judges)}
    human = _human_scores(items, labels, threshold) if labels else None
    if human is not None:
        scores["human"] = human
    binary = {name: [None if s is None else int(s >= threshold) for s in values] for name, values in scores.items()}
    out: dict[str, Any] = {"items": len(items), "threshold": threshold}
    if len(scores) >= 2 and items:
        out["between"] = stats.agreement_summary(binary, scores)
    within = {}
    for k, name in enumerate(judges):
        repeats = [[s.get(d) for s in (r["verdicts"][k].get("samples") or [])] for r, d in items
                   if k < len(r.get("verdicts") or []) and not r["verdicts"][k]["failed"]]
        if repeats and max(len(x) for x in repeats) > 1:
            within[name] = stats.within_judge_agreement(repeats, threshold)
    if within:
        out["within"] = within
    if human is not None:
        out["human"] = {name: _against_human(scores[name], human, threshold) for name in judges}
    return out


def _human_scores(items: Sequence[tuple[Mapping[str, Any], str]], labels: Sequence[Mapping[str, Any]],
                  threshold: float) -> list[float | None]:
    """Each item's human score (a 0/1 label becomes 1 or 10), matched by scenario, dimension, target, rollout."""
    found: dict[tuple[str, str, str | None, int], float] = {}
    for row in labels:
        value = row.get("score")
        if value is None:
            value = 10.0 if row["label"] else 1.0
        key = (str(row.get("scenario")), str(row["dimension"]), row.get("target"), int(row.get("rollout", 0)))
        found[key] = float(value)
    out = []
    for r, d in items:
        key = (r["seed"], d, r["target"], int(r.get("rollout", 0)))
        value = found.get(key, found.get((r["seed"], d, None, int(r.get("rollout", 0)))))
        out.append(value)
    return out


def _against_human(judge: Sequence[float | None], human: Sequence[float | None], threshold: float) -> dict[str, Any]:
    pairs = [(j, h) for j, h in zip(judge, human, strict=True) if j is not None and h is not None]
    if not pairs:
        return {"n": 0, "reason": "no item has both a judge score and a human label"}
    j_bin = [int(j >= threshold) for j, _ in pairs]
    h_bin = [int(h >= threshold) for _, h in pairs]
    return {
        "n": len(pairs),
        "accuracy": sum(a == b for a, b in zip(j_bin, h_bin, strict=True)) / len(pairs),
        "kappa": stats.cohen_kappa(j_bin, h_bin),
        "spearman": stats.spearman([j for j, _ in pairs], [h for _, h in pairs]),
        "calibration": stats.calibration([(j - 1) / 9 for j, _ in pairs], h_bin),
    }


def costs(records: Sequence[Mapping[str, Any]], prices: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    """Requests, tokens, seconds (and USD when priced) per role, in total and per rollout."""
    roles = ("target", "auditor", "judge")
    total = {role: {"requests": 0, "input_tokens": 0, "output_tokens": 0, "seconds": 0.0} for role in roles}
    for r in records:
        for role in roles:
            for key in total[role]:
                total[role][key] += (r.get("usage") or {}).get(role, {}).get(key, 0)
    out: dict[str, Any] = {"rollouts": len(records), "by_role": total}
    usd = 0.0
    for role, (p_in, p_out) in prices.items():
        cost = (total[role]["input_tokens"] * p_in + total[role]["output_tokens"] * p_out) / 1e6
        total[role]["usd"] = round(cost, 6)
        usd += cost
    if prices:
        out["usd"] = round(usd, 6)
    n = max(len(records), 1)
    out["per_rollout"] = {role: {k: round(v / n, 3) for k, v in total[role].items()} for role in roles}
    return out


def record_cost(record: Mapping[str, Any], prices: Mapping[str, Sequence[float]]) -> tuple[int, float]:
    """Tokens (all roles) and USD of one record, for budgets."""
    tokens, usd = 0, 0.0
    for role, usage in (record.get("usage") or {}).items():
        tokens += usage.get("input_tokens", 0) + usage.get("output_tokens", 0)
        if role in prices:
            p_in, p_out = prices[role]
            usd += (usage.get("input_tokens", 0) * p_in + usage.get("output_tokens", 0) * p_out) / 1e6
    return tokens, usd


def summarize(records: Sequence[Mapping[str, Any]], *, targets: Sequence[str], judges: Sequence[str],
              dimensions: Sequence[str], threshold: float, labels: Sequence[Mapping[str, Any]] = (),
              prices: Mapping[str, Sequence[float]] | None = None, n_resamples: int = 1000) -> dict[str, Any]:
    """Every metric of an audit from its records (the ``metrics`` section of ``metrics.json``)."""
    return {
        "elicitation": elicitation(records, targets, threshold, n_resamples=n_resamples),
        "elicitation_by_judge": {
            name: {t: v[ALL] for t, v in elicitation(records, targets, threshold, judge=k,
                                                     n_resamples=n_resamples).items()}
            for k, name in enumerate(judges)
        },
        "comparison": comparisons(records, targets, threshold, n_resamples=n_resamples),
        "scores": score_summary(records, targets, dimensions),
        "judge_reliability": judge_reliability(records, judges, dimensions, threshold, labels),
        "failures": failures(records, judges),
        "dimension_choice": dimension_choice(records),
        "tool_warnings": tool_warnings(records),
        "costs": costs(records, prices or {}),
    }
