"""Constitutional classifiers (Sharma et al. 2025; Cunningham, Wei et al. 2026): guard a model, attack it, measure.

``overseer.guard.run(GuardConfig())`` builds synthetic data from a constitution, trains input, output,
exchange and probe classifiers, calibrates them on benign traffic, and reports attack success, false
refusals and overhead of every defence; the saved policy guards any model as ``guard:<run folder>``.
"""

from overseer._lazy import lazy_exports

lazy_exports(__name__, {
    "GuardConfig": "config",
    "run": "run",
    "GuardPolicy": "classifiers",
    "Classifier": "classifiers",
    "load_constitution": "constitution",
    "Constitution": "constitution",
    "GuardBackend": "backend",
})

__all__ = ["GuardConfig", "run", "GuardPolicy", "Classifier", "load_constitution", "Constitution", "GuardBackend"]
