"""Per-round game metrics on a hand-built evaluation frame, and their bootstrap against the direct computation."""

from __future__ import annotations

import pandas as pd
import pytest

from overseer.pvg.metrics import attack_table, best_of_n, round_estimates, round_statistics

# Problem P: helpful solutions right (score 2) and wrong (score -1); sneaky ones wrong and accepted (0.5), right (-2).
# Problem Q: helpful right (1), right (-0.5, rejected); sneaky wrong (-1, rejected), wrong (3, accepted).
ROWS = [
    ("P", "helpful", 0, True, 2.0, 0.9, 10), ("P", "helpful", 1, False, -1.0, 0.2, 12),
    ("P", "sneaky", 0, False, 0.5, 0.8, 20), ("P", "sneaky", 1, True, -2.0, 0.6, 14),
    ("Q", "helpful", 0, True, 1.0, 0.7, 10), ("Q", "helpful", 1, True, -0.5, 0.4, 8),
    ("Q", "sneaky", 0, False, -1.0, 0.1, 16), ("Q", "sneaky", 1, False, 3.0, 0.3, 18),
]


def frame(round_: int = 1) -> pd.DataFrame:
    df = pd.DataFrame(ROWS, columns=["problem_id", "role", "sample", "correct", "score", "judge_p_correct",
                                     "n_tokens"])
    return df.assign(seed=0, round=round_)


def test_round_statistics_by_hand() -> None:
    got = round_statistics(frame(), baseline_accuracy=1.0)
    # helpful: 3 of 4 right; sneaky: 3 of 4 wrong, of which P/0.5 and Q/3.0 are accepted (score > 0).
    assert got["helpful_accuracy"] == pytest.approx(0.75)
    assert got["sneaky_incorrect"] == pytest.approx(0.75)
    assert got["sneaky_success"] == pytest.approx(0.5)
    # helpful-right accepted: 2.0 and 1.0 of (2.0, 1.0, -0.5); sneaky-wrong rejected: -1.0 of (0.5, -1.0, 3.0).
    assert got["completeness"] == pytest.approx(2 / 3)
    assert got["soundness"] == pytest.approx(1 / 3)
    # judge right when (p >= 0.5) == correct: helpful rows 1,1,1,0 -> 0.75; sneaky rows 0,1,1,1 -> 0.75.
    assert got["judge_helpful"] == pytest.approx(0.75)
    assert got["judge_sneaky"] == pytest.approx(0.75)
    assert got["legibility_tax"] == pytest.approx(0.25)
    assert got["tokens_helpful"] == pytest.approx(10.0)
    assert got["tokens_sneaky"] == pytest.approx(17.0)
    # AUROC: correct scores {2, -2, 1, -0.5}, incorrect {-1, 0.5, -1, 3}; pairs won by correct: 3 + 0 + 3 + 2 of 16.
    assert got["verifier_auroc"] == pytest.approx(8 / 16)


def test_best_of_n_balanced_pool() -> None:
    # P: 2 right (2.0, -2.0), 2 wrong (-1.0, 0.5): pool of 2+2, top score 2.0 is right -> hit.
    # Q: 2 right (1.0, -0.5), 2 wrong (-1.0, 3.0): top score 3.0 is wrong -> miss.
    assert best_of_n(frame()) == pytest.approx(0.5)
    only_right = frame()[frame()["correct"]]
    assert best_of_n(only_right) is None


def test_bootstrap_point_values_equal_direct_computation() -> None:
    evals = pd.concat([frame(0), frame(1)], ignore_index=True)
    baseline = pd.DataFrame({"seed": 0, "problem_id": ["P", "Q"], "correct": [True, False]})
    found = round_estimates(evals, baseline, n_resamples=200)
    direct = round_statistics(frame(1), baseline_accuracy=0.5)
    direct["best_of_n"] = best_of_n(frame(1))
    for name, value in direct.items():
        assert found[1][name]["value"] == pytest.approx(value), name
    low, high = found[1]["helpful_accuracy"]["ci_low"], found[1]["helpful_accuracy"]["ci_high"]
    assert low <= 0.75 <= high


def test_attack_table_separates_censored_from_no_reference() -> None:
    attacks = [
        {"round": 1, "reward": "src", "steps_to_exploit": 3, "reference": 0.4, "budget": 10, "seed": 0},
        {"round": 1, "reward": "src", "steps_to_exploit": None, "reference": 0.2, "budget": 10, "seed": 1},
        {"round": 2, "reward": "src", "steps_to_exploit": None, "reference": None, "budget": 10, "seed": 0},
    ]
    table = attack_table(attacks)
    assert table[0]["status_per_seed"] == ["exploited", "censored"]
    assert table[0]["median_steps"] == 3
    assert table[1]["status_per_seed"] == ["no reference"]
    assert table[1]["median_steps"] is None
