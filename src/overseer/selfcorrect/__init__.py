"""Moral self-correction (Ganguli et al. 2023): BBQ, Winogender and law-school admissions under prompting conditions.

``run(SelfCorrectConfig(models=("smollm2-135m",), conditions=("q", "if")))`` evaluates a model with the
paper's prompts and metrics and writes a run directory; see ``docs/selfcorrect.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from overseer._lazy import lazy_exports

if TYPE_CHECKING:
    from overseer.selfcorrect.config import CONDITIONS, DEFAULT_COT_TOKENS, SUITES, SelfCorrectConfig
    from overseer.selfcorrect.metrics import bbq_scores, bias_score, pearson
    from overseer.selfcorrect.run import SelfCorrectResult, evaluate, make_backend, run

__all__ = [
    "CONDITIONS",
    "DEFAULT_COT_TOKENS",
    "SUITES",
    "SelfCorrectConfig",
    "SelfCorrectResult",
    "bbq_scores",
    "bias_score",
    "evaluate",
    "make_backend",
    "pearson",
    "run",
]

# Imported on first use, so that reading a config does not import the data, models and results layers.
lazy_exports(__name__, {
    **dict.fromkeys(("CONDITIONS", "DEFAULT_COT_TOKENS", "SUITES", "SelfCorrectConfig"), "config"),
    **dict.fromkeys(("bbq_scores", "bias_score", "pearson"), "metrics"),
    **dict.fromkeys(("SelfCorrectResult", "evaluate", "make_backend", "run"), "run"),
})
