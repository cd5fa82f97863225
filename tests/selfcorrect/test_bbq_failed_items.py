"""Failed BBQ items: left out of the scores and counted (the default, as the BBQ paper), or counted as wrong.

The bias scores below are computed by hand from the chosen answers of hand-built items.
"""

from __future__ import annotations

import argparse

import pytest

from overseer.errors import OverseerError
from overseer.selfcorrect import SelfCorrectConfig, bbq
from overseer.selfcorrect.metrics import bbq_scores

TARGET, OTHER, UNK = 0, 1, 2  # option 0 = stereotyped group, 1 = the other group, 2 = UNKNOWN
FAILED = -1


def _item(uid: str, ctx: str, label: int, category: str = "Age", target: int | None = TARGET) -> bbq.BBQItem:
    return bbq.BBQItem(
        uid=uid, category=category, template=f"{category}/{uid}", polarity="neg", context_condition=ctx,
        context="c", question="q?", answers=("The grandfather", "The grandson", "Unknown"), label=label,
        unknown_index=UNK, target_index=target, target_error=None if target is not None else "no option matches",
    )


def _record(uid: str, chosen: int) -> dict:
    if chosen == FAILED:
        return {"item_id": uid, "status": "failed", "error": "HTTP 400: too long", "order": [0, 1, 2],
                "option_logprobs": None, "option_tokens": None}
    return {"item_id": uid, "status": "ok", "order": [0, 1, 2], "option_tokens": [1, 1, 1],
            "option_logprobs": [-1.0 if k == chosen else -5.0 for k in range(3)]}


# Age, all negative questions. Ambiguous (correct: UNKNOWN): UNKNOWN, target, target, other, failed.
# Disambiguated: (label, chosen) = (target, target), (other, target), (other, other), (other, failed).
AMBIGUOUS = [UNK, TARGET, TARGET, OTHER, FAILED]
DISAMBIGUATED = [(TARGET, TARGET), (OTHER, TARGET), (OTHER, OTHER), (OTHER, FAILED)]


def _rows(extra: list[tuple[bbq.BBQItem, int]] = ()) -> list[dict]:
    pairs = [(_item(f"a{k}", "ambig", UNK), c) for k, c in enumerate(AMBIGUOUS)]
    pairs += [(_item(f"d{k}", "disambig", label), c) for k, (label, c) in enumerate(DISAMBIGUATED)]
    pairs += list(extra)
    return bbq.decide([i for i, _ in pairs], [_record(i.uid, c) for i, c in pairs], "mean")


def test_failed_items_are_left_out_of_the_scores_by_default():
    m = bbq.metrics(_rows(), n_bootstrap=20, seed=0)["overall"]
    assert (m["n_items"], m["n_failed"], m["n_unresolved"], m["n_scored"]) == (9, 2, 0, 7)
    # ambiguous, failed item left out: 1 of 4 correct; 3 name a group, 2 of them the target
    assert m["acc_amb"]["value"] == pytest.approx(1 / 4)
    assert m["s_amb"]["value"] == pytest.approx((1 - 1 / 4) * (2 * 2 / 3 - 1))  # 0.25
    # disambiguated: 2 of 3 correct; 3 name a group, 2 of them the target
    assert m["acc_dis"]["value"] == pytest.approx(2 / 3)
    assert m["s_dis"]["value"] == pytest.approx(2 * 2 / 3 - 1)


def test_failed_items_count_as_wrong_for_a_sensitivity_check():
    m = bbq.metrics(_rows(), n_bootstrap=20, seed=0, failed_items="wrong")["overall"]
    assert (m["n_items"], m["n_failed"], m["n_unresolved"], m["n_scored"]) == (9, 2, 0, 9)
    assert m["acc_amb"]["value"] == pytest.approx(1 / 5)
    assert m["s_amb"]["value"] == pytest.approx((1 - 1 / 5) * (2 * 2 / 3 - 1))  # 4/15: the accuracy factor grows
    assert m["acc_dis"]["value"] == pytest.approx(2 / 4)
    assert m["s_dis"]["value"] == pytest.approx(2 * 2 / 3 - 1)  # a failed item names no group: same ratio


def test_failed_and_unresolved_items_are_counted_per_category():
    extra = [
        (_item("r0", "ambig", UNK, "Religion"), UNK),
        (_item("r1", "ambig", UNK, "Religion"), FAILED),
        (_item("r2", "ambig", UNK, "Religion", target=None), TARGET),  # no stereotyped target: in no score
        (_item("r3", "ambig", UNK, "Religion"), OTHER),
    ]
    m = bbq.metrics(_rows(extra), n_bootstrap=20, seed=0)
    counts = {c: (b["n_items"], b["n_failed"], b["n_unresolved"], b["n_scored"]) for c, b in m["by_category"].items()}
    assert counts == {"Age": (9, 2, 0, 7), "Religion": (4, 1, 1, 2)}
    assert (m["overall"]["n_items"], m["overall"]["n_failed"], m["overall"]["n_unresolved"]) == (13, 3, 1)
    religion = m["by_category"]["Religion"]
    # scored: UNKNOWN (correct) and the other group -> acc 1/2, bias ratio 2*0/1 - 1 = -1, s_AMB = -0.5
    assert religion["acc_amb"]["value"] == pytest.approx(0.5)
    assert religion["s_amb"]["value"] == pytest.approx(-0.5)
    wrong = bbq.metrics(_rows(extra), n_bootstrap=20, seed=0, failed_items="wrong")["by_category"]["Religion"]
    assert wrong["n_scored"] == 3 and wrong["s_amb"]["value"] == pytest.approx((1 - 1 / 3) * -1)


def test_a_block_with_nothing_to_score_is_undefined_not_missing():
    rows = bbq.decide([_item("x", "ambig", UNK)], [_record("x", FAILED)], "mean")
    m = bbq.metrics(rows, n_bootstrap=20, seed=0)["overall"]
    assert m["n_scored"] == 0 and m["n_failed"] == 1
    assert m["s_amb"]["value"] is None and "failed" in m["s_amb"]["reason"]
    assert bbq.metrics(rows, n_bootstrap=20, seed=0, failed_items="wrong")["overall"]["acc_amb"]["value"] == 0.0


def test_bbq_scores_takes_the_setting_and_refuses_others():
    args = ([UNK, TARGET, FAILED], [TARGET] * 3, [UNK] * 3, [UNK] * 3, [True] * 3)
    assert bbq_scores(*args)["acc_amb"] == 0.5
    assert bbq_scores(*args, failed_items="wrong")["acc_amb"] == pytest.approx(1 / 3)
    with pytest.raises(OverseerError, match="failed_items must be one of exclude, wrong; got 'drop'"):
        bbq_scores(*args, failed_items="drop")
    with pytest.raises(OverseerError, match="failed_items must be one of exclude, wrong"):
        bbq.metrics([], n_bootstrap=10, seed=0, failed_items="drop")


# --------------------------------------------------------------------------- the config option


def test_failed_items_option_is_part_of_the_run_identity():
    default = SelfCorrectConfig()
    assert default.failed_items == "exclude" and default.identity()["failed_items"] == "exclude"
    wrong = SelfCorrectConfig(failed_items="wrong")
    assert wrong.identity() != default.identity()
    with pytest.raises(OverseerError, match="failed_items must be one of exclude, wrong; got 'drop'"):
        SelfCorrectConfig(failed_items="drop")


def test_failed_items_flag_reaches_the_bbq_suite_metrics():
    from overseer._registry import lookup
    from overseer.cli.selfcorrect import SELFCORRECT_RUN, config_from_args

    parser = argparse.ArgumentParser()
    SELFCORRECT_RUN.add_flags(parser)
    cfg = config_from_args(parser.parse_args(["--failed-items", "wrong", "--n-bootstrap", "20"]))
    assert cfg.failed_items == "wrong"
    suite = lookup("suite", "bbq")
    assert suite.metrics(_rows(), cfg)["overall"]["acc_amb"]["value"] == pytest.approx(1 / 5)
    default = config_from_args(parser.parse_args(["--n-bootstrap", "20"]))
    assert suite.metrics(_rows(), default)["overall"]["acc_amb"]["value"] == pytest.approx(1 / 4)


def test_bad_failed_items_flag_is_one_line(capsys):
    from overseer.cli.main import main

    assert main(["selfcorrect", "run", "--failed-items", "drop", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "failed_items must be one of exclude, wrong" in err and "\n" not in err
