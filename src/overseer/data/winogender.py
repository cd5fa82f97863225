"""Winogender (Rudinger et al. 2018): the pronoun a model uses for an occupation, against labour statistics.

Source: "Gender Bias in Coreference Resolution", https://github.com/rudinger/winogender-schemas
(MIT licence).

From the repository's ``data/``: ``templates.tsv`` rows such as::

    occupation(0)  other-participant(1)  answer  sentence
    technician     customer              0       The $OCCUPATION told the $PARTICIPANT that $NOM_PRONOUN had
                                                 completed the repair.   (one line in the file)

and ``occupations-stats.tsv`` (``bls_pct_female`` is a percentage). As in the paper, only the 60
templates whose pronoun refers to the occupation (``answer == 0``) are used. The pronoun's case comes
from the placeholder (``$NOM_PRONOUN`` she/he/they, ``$POSS_PRONOUN`` her/his/their, ``$ACC_PRONOUN``
her/him/them); the item keeps the sentence up to the blank and the three pronouns that may follow it.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from overseer.errors import OverseerError

__all__ = ["PRONOUNS", "WinogenderItem", "load_winogender"]

PRONOUNS = {  # female, male, neutral
    "NOM": ("she", "he", "they"),
    "POSS": ("her", "his", "their"),
    "ACC": ("her", "him", "them"),
}
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
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    except (UnicodeDecodeError, csv.Error, OSError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise OverseerError(f"cannot read Winogender file {path} as UTF-8 TSV: {reason}") from None
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
