"""Moral self-correction (Ganguli et al. 2023): BBQ, Winogender and law-school admissions under prompting conditions.

``run(SelfCorrectConfig(models=("smollm2-135m",), conditions=("q", "if")))`` evaluates a model with the
paper's prompts and metrics and writes a run directory; see ``docs/selfcorrect.md``.
"""

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
