"""Behavioural audits on inspect_ai: an auditor probes a target through seeds, judges score the transcripts.

``overseer.audit.run(AuditConfig())`` is ``overseer audit run``; ``overseer.audit.elicit(BEHAVIOUR, cfg)``
is ``overseer audit elicit``. The inspect task is ``overseer/audit`` (:mod:`overseer.audit.task`).
"""

from overseer.audit.config import AuditConfig
from overseer.audit.elicit import elicit
from overseer.audit.run import run

__all__ = ["AuditConfig", "elicit", "run"]
