"""Metrics from records, checked on hand-made records: pairing, failures, human labels, costs."""

from __future__ import annotations

import pytest

from overseer.audit.analysis import comparisons, costs, elicitation, failures, judge_reliability


def _record(target: str, seed: str, score: float | None, behaviour: str = "sycophancy", status: str = "ok",
            rollout: int = 0, second: float | None = None) -> dict:
    verdicts = [] if status != "ok" else [
        {"judge": "j1", "failed": score is None, "scores": {} if score is None else {behaviour: score},
         "error": None if score is not None else "bad json", "samples": []},
        {"judge": "j2", "failed": second is None, "scores": {} if second is None else {behaviour: second},
         "error": None, "samples": []},
    ]
    return {"target": target, "seed": seed, "sample": f"{seed}#{rollout}", "rollout": rollout, "behavior": behaviour,
            "behavior_dimension": behaviour, "status": status, "reason": "target a failed: boom" if status != "ok"
            else None, "verdicts": verdicts,
            "usage": {"target": {"requests": 2, "input_tokens": 100, "output_tokens": 50, "seconds": 1.0},
                      "judge": {"requests": 1, "input_tokens": 300, "output_tokens": 20, "seconds": 0.5}}}


RECORDS = [
    _record("a", "s1", 9, second=8), _record("a", "s2", 2, second=3), _record("a", "s3", None, second=9),
    _record("a", "s4", 8, status="failed"),
    _record("b", "s1", 3, second=2), _record("b", "s2", 2, second=2), _record("b", "s3", 8, second=9),
]


def test_failed_scenarios_and_judge_failures_are_counted_not_scored() -> None:
    rate = elicitation(RECORDS, ["a", "b"], 7.0, n_resamples=100)
    assert (rate["a"]["all"]["successes"], rate["a"]["all"]["n"]) == (1, 2)  # s3's judge failed, s4 failed
    assert (rate["b"]["all"]["successes"], rate["b"]["all"]["n"]) == (1, 3)
    found = failures(RECORDS, ["j1", "j2"])
    assert found["scenarios_failed"] == 1 and found["judge_failed"] == {"j1": 1, "j2": 0}
    assert found["judged"] == {"j1": 5, "j2": 6}
    assert found["judge_citations"]["j2"] == {"cited": 0, "verified": 0, "unreadable": 0}


def test_citations_are_counted_per_judge() -> None:
    record = _record("a", "s1", 9, second=8)
    record["verdicts"][0].update(citations=[{"message": 2, "quote": "x", "verified": True},
                                            {"message": 9, "quote": "y", "verified": False}], citation_error=None)
    record["verdicts"][1].update(citations=[], citation_error="the answer has no highlights")
    found = failures([record, _record("a", "s2", 2, second=3)], ["j1", "j2"])
    assert found["judge_citations"] == {"j1": {"cited": 2, "verified": 1, "unreadable": 0},
                                        "j2": {"cited": 0, "verified": 0, "unreadable": 1}}


def test_comparison_is_paired_over_scenarios_judged_for_both() -> None:
    diff = comparisons(RECORDS, ["a", "b"], 7.0, n_resamples=200)["b vs a"]["all"]
    # shared judged scenarios: s1 (b 0 - a 1 = -1) and s2 (0 - 0 = 0); s3 is unjudged for a, s4 failed for a
    assert diff["value"] == pytest.approx(-0.5)
    assert diff["ci_low"] == pytest.approx(-1.0) and diff["ci_high"] == pytest.approx(0.0)


def test_human_labels_are_matched_by_scenario_dimension_and_target() -> None:
    labels = [{"scenario": "s1", "dimension": "sycophancy", "target": "a", "score": 10},
              {"scenario": "s2", "dimension": "sycophancy", "target": "a", "label": 0},
              {"scenario": "s1", "dimension": "sycophancy", "target": "b", "label": 1}]
    found = judge_reliability(RECORDS, ["j1", "j2"], ["sycophancy"], 7.0, labels)
    human = found["human"]["j1"]
    # j1 on the labelled items: a/s1 9 (human 10), a/s2 2 (human 1), b/s1 3 (human 10): 2 of 3 agree
    assert human["n"] == 3 and human["accuracy"] == pytest.approx(2 / 3)
    assert found["between"]["raters"] == ["j1", "j2", "human"]


def test_costs_add_up_per_role_and_price() -> None:
    found = costs(RECORDS[:2], {"judge": (3.0, 15.0)})
    assert found["by_role"]["target"]["input_tokens"] == 200
    assert found["usd"] == pytest.approx((600 * 3 + 40 * 15) / 1e6)
