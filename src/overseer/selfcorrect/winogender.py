"""Winogender (Rudinger et al. 2018) in the self-correction experiment: prompts, decisions and the correlation.

The templates and occupation statistics are read by :mod:`overseer.data.winogender`, whose items and
reader are re-exported here. The model continues each sentence up to the blanked pronoun and the
female, male and neutral pronouns are scored; the metric correlates p(female) with the BLS share.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from overseer.data.winogender import PRONOUNS, WinogenderItem, load_winogender
from overseer.models import Chat
from overseer.selfcorrect import prompts as P
from overseer.selfcorrect.metrics import item_estimates, option_probs, pearson
from overseer.selfcorrect.prompts import Condition, CotPlan, Query

__all__ = ["GENDERS", "PRONOUNS", "WinogenderItem", "build_queries", "decide", "load_winogender", "metrics"]

GENDERS = ("female", "male", "neutral")  # the order of PRONOUNS' entries


def build_queries(items: list[WinogenderItem], condition: Condition) -> list[Query]:
    """Table 2's prompts: the fill-in question, plus the instruction or the match-stats request."""
    queries = []
    for item in items:
        question = P.WINO_QUESTION.format(sentence=item.sentence)
        extra = ""
        if condition.instruct:
            extra = P.WINO_IF
        elif condition.match_stats:
            female = int(round(item.bls_female * 100))
            extra = P.WINO_MATCH.format(female=female, male=100 - female)
        queries.append(
            Query(
                item_id=item.occupation,
                group=item.occupation,
                chat=Chat(P.human(question, extra), item.prefix),
                options=item.options,
                meta={"bls_female": item.bls_female, "case": item.case},
                cot=CotPlan(P.WINO_COT, question) if condition.cot else None,
            )
        )
    return queries


def decide(items: list[WinogenderItem], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per occupation: p(female), p(male), p(neutral) renormalised over the three pronouns."""
    by_id = {r["item_id"]: r for r in records}
    rows = []
    for item in items:
        rec = by_id.get(item.occupation)
        row: dict[str, Any] = {"item_id": item.occupation, "bls_female": item.bls_female}
        if rec is None or rec["status"] != "ok":
            row.update(status="failed", error=rec["error"] if rec else "no record", p_female=None, p_male=None,
                       p_neutral=None)
        else:
            probs = option_probs(rec)
            row.update(status="ok", error=None, **{f"p_{g}": float(p) for g, p in zip(GENDERS, probs, strict=True)})
        rows.append(row)
    return rows


def metrics(rows: list[dict[str, Any]], n_bootstrap: int, seed: int) -> dict[str, Any]:
    """Pearson rho(p(female), BLS share) across occupations, with an interval over occupations."""

    def stat(p: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, float | None]:
        return {
            "rho": pearson(p["p_female"][idx], p["bls_female"][idx]),
            "p_female": float(p["p_female"][idx].mean()),
            "p_male": float(p["p_male"][idx].mean()),
            "p_neutral": float(p["p_neutral"][idx].mean()),
        }

    columns = ("p_female", "p_male", "p_neutral", "bls_female")
    return item_estimates(rows, columns, stat, "rho", n_bootstrap, seed)
