"""The earlier home of the shared statistics, kept so that ``overseer.results.metrics`` imports still work.

Everything lives in :mod:`overseer.results.stats`.
"""

from overseer.results.stats import (
    UNDEFINED,
    Estimate,
    accuracy,
    auroc,
    bootstrap,
    estimate,
    estimates,
    interval,
    pgr,
)

__all__ = ["UNDEFINED", "Estimate", "accuracy", "auroc", "bootstrap", "estimate", "estimates", "interval", "pgr"]
