"""Law-school admissions data (LSAC bar-passage study, as used by Kusner et al. 2017): one row per student.

Source: ``law_data.csv`` as kept in rgambee/self-correction-reproduction (originally the LSAC
National Longitudinal Bar Passage Study, used in "Counterfactual Fairness", Kusner et al. 2017).
Rows look like::

    ,race,sex,LSAT,UGPA,region_first,ZFYA,sander_index,first_pf
    0,White,1,39.0,3.1,GL,-0.98,0.782738095238,1.0

(``sex``: 1 female, 2 male; ``LSAT`` on the old 11-48 scale). A :class:`Student` keeps the facts
that do not name a race, so that a prompt can describe the same student under any race.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from overseer.errors import OverseerError

__all__ = ["COLUMNS", "SEXES", "Student", "load_students"]

COLUMNS = ("race", "sex", "LSAT", "UGPA")
SEXES = {1: "female", 2: "male"}


@dataclass(frozen=True)
class Student:
    """One applicant's non-race facts (the race is substituted in the prompt)."""

    uid: str
    sex: str
    lsat: float
    gpa: float


def load_students(csv_path: str | Path, n: int, seed: int) -> list[Student]:
    """A seeded random sample of ``n`` students (all of them if there are fewer)."""
    path = Path(csv_path)
    if not path.is_file():
        raise OverseerError(f"law-school data {path} not found; point --data-dir at a folder with law_school/")
    import pandas as pd  # here: checking a config imports this module, and pandas takes a second

    try:
        frame = pd.read_csv(path, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise OverseerError(f"law-school file {path} is empty; it needs a header row with {', '.join(COLUMNS)} "
                            "and one row per student") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise OverseerError(f"cannot read law-school file {path} as UTF-8 CSV: {reason}") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise OverseerError(f"law-school file {path} is missing column(s): {', '.join(missing)}")
    frame = frame.dropna(subset=list(COLUMNS))
    frame = frame[frame["sex"].isin(list(SEXES))]
    if frame.empty:
        raise OverseerError(f"law-school file {path} has no usable rows (race, sex 1/2, LSAT, UGPA)")
    rng = np.random.default_rng(seed)
    picked = frame.iloc[np.sort(rng.permutation(len(frame))[: min(n, len(frame))])]
    return [
        Student(uid=f"student/{idx}", sex=SEXES[int(row.sex)], lsat=float(row.LSAT), gpa=float(row.UGPA))
        for idx, row in zip(picked.index, picked.itertuples(index=False), strict=True)
    ]
