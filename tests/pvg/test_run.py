"""The pvg summary line, which prints the last round's estimates as the report's table does."""

from __future__ import annotations

from pathlib import Path

from overseer.pvg.run import summary_line
from overseer.results import RunResult


def _estimate(value: float | None, low: float | None = None, high: float | None = None) -> dict:
    return {"value": value, "ci_low": low, "ci_high": high, "reason": None if value is not None else "no items"}


def test_summary_line_prints_the_last_round_with_intervals_at_two_digits() -> None:
    last = {"helpful_accuracy": _estimate(0.4225, 0.375, 0.47), "sneaky_success": _estimate(0.285, 0.24375, 0.3263),
            "verifier_auroc": _estimate(0.61598, 0.56444, 0.66279)}
    metrics = {"round_0": {"helpful_accuracy": _estimate(0.9, 0.8, 1.0)}, "round_2": last,
               "baseline_accuracy": _estimate(0.4875, 0.44125, 0.5325)}
    summary = {"task": "toy", "reward": "src", "rounds": 2, "helpful_accuracy": 0.4225}
    line = summary_line(RunResult(Path("runs/pvg-x"), metrics, False, 1.0, summary, "pvg"))
    assert line == ("pvg toy src: round 2 helpful accuracy 0.42 [0.38, 0.47], sneaky success 0.28 [0.24, 0.33], "
                    "verifier AUROC 0.62 [0.56, 0.66]; correctness-only baseline 0.49 [0.44, 0.53]")


def test_summary_line_without_a_baseline_or_an_undefined_value_says_n_a() -> None:
    last = {"helpful_accuracy": _estimate(0.5, 0.4, 0.6), "sneaky_success": _estimate(None),
            "verifier_auroc": _estimate(0.7)}
    line = summary_line(RunResult(Path("runs/pvg-x"), {"round_1": last}, False, 1.0,
                                  {"task": "toy", "reward": "cgc", "rounds": 1}, "pvg"))
    assert line.endswith("helpful accuracy 0.50 [0.40, 0.60], sneaky success n/a, verifier AUROC 0.70; "
                         "correctness-only baseline n/a")


def test_report_attack_cell_shows_censoring_and_the_exploited_share() -> None:
    from overseer.pvg.metrics import attack_table
    from overseer.pvg.report import _attack_cell

    attacks = [{"round": 1, "reward": "src", "steps_to_exploit": s, "reference": 0.4, "budget": 20, "seed": i}
               for i, s in enumerate([0, None, 7])]
    cell = _attack_cell(attack_table(attacks), 1)
    assert cell.startswith("src: 0, >20, 7 (exploited 0.67 [") and _attack_cell(attack_table(attacks), 2) == "-"
