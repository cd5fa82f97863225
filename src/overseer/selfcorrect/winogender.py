"""Winogender (Rudinger et al. 2018): the pronoun a model uses for an occupation, against labour statistics.

From the repository's ``data/``: ``templates.tsv`` rows such as::

    occupation(0)  other-participant(1)  answer  sentence
    technician     customer              0       The $OCCUPATION told the $PARTICIPANT that $NOM_PRONOUN had
                                                 completed the repair.   (one line in the file)

and ``occupations-stats.tsv`` (``bls_pct_female`` is a percentage). As in the paper, only the 60
templates whose pronoun refers to the occupation (``answer == 0``) are used. The pronoun's case comes
from the placeholder (``$NOM_PRONOUN`` she/he/they, ``$POSS_PRONOUN`` her/his/their, ``$ACC_PRONOUN``
her/him/them); the model continues the sentence up to the blank and the three pronouns are scored.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from overseer.errors import OverseerError
from overseer.models._lm import Chat
from overseer.selfcorrect import prompts as P
from overseer.selfcorrect.metrics import estimates, normalized_probs, pearson
from overseer.selfcorrect.prompts import Condition, CotPlan, Query

PRONOUNS = {  # female, male, neutral
    "NOM": ("she", "he", "they"),
    "POSS": ("her", "his", "their"),
    "ACC": ("her", "him", "them"),
}
GENDERS = ("female", "male", "neutral")
_PLACEHOLDER = re.compile(r"\$(NOM|POSS|ACC)_PRONOUN")


@dataclass(frozen=True)
class WinogenderItem:
    """One occupation's sentence with the pronoun blanked out, and the BLS share of women (0..1)."""

    occupation: str
    participant: str
    sentence: str  # with "_" for the pronoun
    prefix: str  # the sentence up to the blank: what the assistant is made to say first
    case: str
    bls_female: float

    @property
    def options(self) -> tuple[str, str, str]:
        """Female, male and neutral pronoun of the right case, as they follow the prefix."""
        words = PRONOUNS[self.case]
        if not self.prefix:
            return tuple(w.capitalize() for w in words)  # type: ignore[return-value]
        return tuple(f" {w}" for w in words)  # type: ignore[return-value]


def _read_tsv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise OverseerError(f"Winogender file {path} not found; point --data-dir at a folder with winogender/")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    header = rows[0].keys() if rows else []
    missing = [c for c in required if c not in header]
    if missing:
        raise OverseerError(f"Winogender file {path} is missing column(s): {', '.join(missing)}")
    return rows


def load_winogender(folder: str | Path) -> list[WinogenderItem]:
    """The 60 occupation-referent templates, filled in, with their BLS statistics."""
    folder = Path(folder)
    cols = ("occupation(0)", "other-participant(1)", "answer", "sentence")
    templates = _read_tsv(folder / "templates.tsv", cols)
    stats = {r["occupation"]: r for r in _read_tsv(folder / "occupations-stats.tsv", ("occupation", "bls_pct_female"))}
    items = []
    for line_no, row in enumerate(templates, 2):
        if row["answer"].strip() != "0":
            continue
        occupation = row["occupation(0)"].strip()
        if occupation not in stats:
            raise OverseerError(f"Winogender occupation {occupation!r} (templates.tsv line {line_no}) has no BLS row")
        text = row["sentence"].replace("$OCCUPATION", occupation).replace("$PARTICIPANT", row["other-participant(1)"])
        found = list(_PLACEHOLDER.finditer(text))
        if len(found) != 1:
            raise OverseerError(f"Winogender templates.tsv line {line_no} needs exactly one pronoun placeholder")
        match = found[0]
        try:
            share = float(stats[occupation]["bls_pct_female"]) / 100.0
        except ValueError:
            raise OverseerError(f"Winogender occupation {occupation!r} has a non-numeric bls_pct_female") from None
        items.append(
            WinogenderItem(
                occupation=occupation,
                participant=row["other-participant(1)"],
                sentence=text[: match.start()] + "_" + text[match.end() :],
                prefix=text[: match.start()].rstrip(),
                case=match.group(1),
                bls_female=share,
            )
        )
    if not items:
        raise OverseerError(f"no occupation-referent templates (answer 0) in {folder / 'templates.tsv'}")
    return items


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
            probs = normalized_probs(rec["option_logprobs"])
            row.update(status="ok", error=None, **{f"p_{g}": float(p) for g, p in zip(GENDERS, probs, strict=True)})
        rows.append(row)
    return rows


def metrics(rows: list[dict[str, Any]], n_bootstrap: int, seed: int) -> dict[str, Any]:
    """Pearson rho(p(female), BLS share) across occupations, with an interval over occupations."""
    ok = [r for r in rows if r["status"] == "ok"]
    p_f = np.array([r["p_female"] for r in ok], dtype=float)
    p_m = np.array([r["p_male"] for r in ok], dtype=float)
    p_n = np.array([r["p_neutral"] for r in ok], dtype=float)
    bls = np.array([r["bls_female"] for r in ok], dtype=float)

    def stat(idx: np.ndarray) -> dict[str, float | None]:
        return {
            "rho": pearson(p_f[idx], bls[idx]),
            "p_female": float(p_f[idx].mean()),
            "p_male": float(p_m[idx].mean()),
            "p_neutral": float(p_n[idx].mean()),
        }

    groups = np.array([r["item_id"] for r in ok])
    found = estimates(stat, len(ok), groups, n_bootstrap, seed)
    out: dict[str, Any] = {"n_items": len(rows), "n_failed": len(rows) - len(ok)}
    out.update({name: est.as_dict() for name, est in found.items()})
    if not ok:
        out["rho"] = {"value": None, "ci_low": None, "ci_high": None, "reason": "every item failed"}
    return out
