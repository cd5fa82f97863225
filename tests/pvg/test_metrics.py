"""Per-round game metrics on a hand-built evaluation frame, and their bootstrap against the direct computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from overseer.pvg.metrics import acceptance, attack_table, best_of_n, round_estimates, round_statistics

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


def accepted_frame(round_: int = 1) -> pd.DataFrame:
    """The frame with acceptance fixed by hand: a solution is accepted when its score is above 0."""
    df = frame(round_)
    return df.assign(accepted=(df["score"] > 0).astype(float))


def test_round_statistics_by_hand() -> None:
    got = round_statistics(accepted_frame(), baseline_accuracy=1.0, n=2)
    # helpful: 3 of 4 right; sneaky: 3 of 4 wrong, of which P/0.5 and Q/3.0 are accepted.
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
    # best-of-2 on helpful solutions only: P has one right (2.0) and one wrong (-1.0): hit; Q has no wrong one.
    assert got["best_of_n"] == pytest.approx(1.0)


def test_best_of_n_is_the_papers_balanced_definition() -> None:
    """Hand-built: helpful solutions only, fixed n, problems with n/2 right and n/2 wrong, first of each by index."""
    rows = [
        # A: 2 right (0.1, 0.9), 3 wrong (0.5, 0.2, 5.0); n=4 takes right 0,1 and wrong 2,3 -> top 0.9 is right.
        ("A", "helpful", 0, True, 0.1), ("A", "helpful", 1, True, 0.9), ("A", "helpful", 2, False, 0.5),
        ("A", "helpful", 3, False, 0.2), ("A", "helpful", 4, False, 5.0),
        # A's sneaky solutions are not the current helpful prover's: a top-scored wrong one must not count.
        ("A", "sneaky", 0, False, 9.0), ("A", "sneaky", 1, True, -9.0),
        # B: 2 right, 2 wrong; the top score 1.0 is shared by one right and one wrong: a random pick, 0.5.
        ("B", "helpful", 0, True, 1.0), ("B", "helpful", 1, True, 0.0), ("B", "helpful", 2, False, 1.0),
        ("B", "helpful", 3, False, -1.0),
        # C: 3 right, 1 wrong: not balanced at n=4, left out (at n=2 it counts: right 0.3 vs wrong 0.4 -> miss).
        ("C", "helpful", 0, True, 0.3), ("C", "helpful", 1, True, 0.0), ("C", "helpful", 2, True, 0.0),
        ("C", "helpful", 3, False, 0.4),
    ]
    df = pd.DataFrame(rows, columns=["problem_id", "role", "sample", "correct", "score"])
    assert best_of_n(df, n=4) == pytest.approx((1.0 + 0.5) / 2)
    # n=2: A right 0 (0.1) vs wrong 2 (0.5): miss; B right 0 (1.0) vs wrong 2 (1.0): tie 0.5; C: miss.
    assert best_of_n(df, n=2) == pytest.approx((0.0 + 0.5 + 0.0) / 3)
    assert best_of_n(df[df["correct"]], n=2) is None


def test_acceptance_threshold_comes_from_the_other_half_of_the_problems() -> None:
    """Each fold's threshold accepts accept_rate of the *other* fold's helpful-correct solutions, nothing else."""
    rng = np.random.default_rng(0)
    rows = []
    for p in range(40):
        for k in range(4):
            rows.append({"seed": 0, "round": 1, "problem_id": f"p{p}", "role": "helpful", "sample": k,
                         "correct": True, "score": float(rng.normal())})
            rows.append({"seed": 0, "round": 1, "problem_id": f"p{p}", "role": "sneaky", "sample": k,
                         "correct": False, "score": float(rng.normal() + 10.0)})
    df = pd.DataFrame(rows)
    out = acceptance(df, rate=0.75)
    assert set(out["fold"]) == {0, 1} and out.groupby("problem_id")["fold"].nunique().max() == 1
    for f in (0, 1):
        other = out[(out["fold"] == 1 - f) & (out["role"] == "helpful")]["score"]
        threshold = out.loc[out["fold"] == f, "threshold"].unique()
        assert len(threshold) == 1 and (other >= threshold[0]).mean() == pytest.approx(0.75, abs=1 / len(other))
    # sneaky-incorrect solutions score far higher: all accepted, whatever the sneaky rows were
    assert out.loc[out["role"] == "sneaky", "accepted"].eq(1.0).all()
    moved = acceptance(df.assign(score=np.where(df["role"] == "sneaky", -50.0, df["score"])), rate=0.75)
    np.testing.assert_array_equal(moved["threshold"], out["threshold"])  # sneaky scores do not move the threshold
    # an offset added to every score of the round moves the threshold with it and leaves acceptance as it was
    shifted = acceptance(df.assign(score=df["score"] + 3.0), rate=0.75)
    np.testing.assert_array_equal(shifted["accepted"], out["accepted"])
    # one fold without any helpful-correct solution: the other fold has no threshold, its rows count nowhere
    lonely = out[out["fold"] == 0]["problem_id"].unique()
    emptied = df["problem_id"].isin(lonely) & (df["role"] == "helpful")
    broken = df.assign(correct=np.where(emptied, False, df["correct"]))
    got = acceptance(broken, rate=0.75)
    assert got.loc[got["fold"] == 1, "accepted"].isna().all() and got.loc[got["fold"] == 0, "accepted"].notna().all()


def test_bootstrap_point_values_equal_direct_computation() -> None:
    evals = pd.concat([accepted_frame(0), accepted_frame(1)], ignore_index=True)
    baseline = pd.DataFrame({"seed": 0, "problem_id": ["P", "Q"], "correct": [True, False]})
    found = round_estimates(evals, baseline, n_resamples=200, n=2)
    direct = round_statistics(accepted_frame(1), baseline_accuracy=0.5, n=2)
    for name, value in direct.items():
        assert found[1][name]["value"] == pytest.approx(value), name
    low, high = found[1]["helpful_accuracy"]["ci_low"], found[1]["helpful_accuracy"]["ci_high"]
    assert low <= 0.75 <= high


def test_attack_table_separates_censored_from_no_reference() -> None:
    attacks = [
        {"round": 1, "reward": "src", "steps_to_exploit": 3, "reference": 0.4, "budget": 10, "seed": 0},
        {"round": 1, "reward": "src", "steps_to_exploit": None, "reference": 0.2, "budget": 10, "seed": 1},
        {"round": 2, "reward": "src", "steps_to_exploit": None, "reference": None, "budget": 10, "seed": 0},
        {"round": 2, "reward": "goodhart", "steps_to_exploit": 0, "reference": None, "budget": 10, "seed": 0},
    ]
    table = attack_table(attacks)
    assert table[0]["status_per_seed"] == ["exploited", "censored"]
    assert table[0]["median_steps"] == 3
    share = table[0]["exploited_share"]
    assert share["value"] == pytest.approx(0.5) and 0 < share["ci_low"] < 0.5 < share["ci_high"] < 1
    assert table[2]["exploited_share"]["value"] is None
    assert table[1]["status_per_seed"] == ["exploited"]  # goodhart: exploited at update 0, no reference needed
    assert table[1]["median_steps"] == 0
    assert table[2]["status_per_seed"] == ["no reference"]
    assert table[2]["median_steps"] is None
