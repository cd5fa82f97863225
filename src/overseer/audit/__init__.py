"""Behavioural audits on inspect_ai: an auditor probes a target through seeds, judges score the transcripts.

``overseer.audit.run(AuditConfig())`` is ``overseer audit run``; ``overseer.audit.elicit_stages(BEHAVIOUR, cfg)``
is ``overseer audit elicit`` (Bloom's stages). :func:`run_seeds` is the engine for code that makes its own scenarios: it
audits :class:`Seed` objects (sandboxes included) judged on :class:`Dimension` objects. The inspect task is
``overseer/audit`` (:mod:`overseer.audit.task`); a task with its own scorer builds on :func:`audit_solver`,
:func:`seed_samples` and :func:`solver_outcome`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from overseer._lazy import lazy_exports
from overseer.audit.config import AuditConfig
from overseer.audit.elicit import elicit, elicit_stages
from overseer.audit.run import run, run_seeds
from overseer.audit.scenarios import Dimension, Seed, dimensions_from_mapping, load_dimensions, load_seeds

if TYPE_CHECKING:
    from overseer.audit.task import audit_solver, failed, seed_samples, solver_outcome

__all__ = [
    "AuditConfig",
    "Dimension",
    "Seed",
    "audit_solver",
    "dimensions_from_mapping",
    "elicit",
    "elicit_stages",
    "failed",
    "load_dimensions",
    "load_seeds",
    "run",
    "run_seeds",
    "seed_samples",
    "solver_outcome",
]

# The inspect task's parts are imported on first use: reading a config or a seed needs no solver.
lazy_exports(__name__, dict.fromkeys(("audit_solver", "failed", "seed_samples", "solver_outcome"), "task"))
