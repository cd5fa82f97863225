"""Weak-to-strong generalization (Burns et al. 2023): weak supervisor, strong student, ceiling, PGR.

The names below are imported on first use (:func:`overseer._lazy.lazy_exports`), so that reading
a config (``overseer.w2s.config``) does not wait for torch, scikit-learn, pandas and matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from overseer._lazy import lazy_exports

if TYPE_CHECKING:
    from overseer.w2s.config import HeadConfig, W2SConfig
    from overseer.w2s.heads import TorchHead
    from overseer.w2s.losses import AuxConfidence, CrossEntropy, confidence_coefficient, loss_names, make_loss
    from overseer.w2s.metrics import w2s_metrics
    from overseer.w2s.run import W2SResult, run

__all__ = [
    "AuxConfidence",
    "CrossEntropy",
    "HeadConfig",
    "TorchHead",
    "W2SConfig",
    "W2SResult",
    "confidence_coefficient",
    "loss_names",
    "make_loss",
    "run",
    "w2s_metrics",
]

lazy_exports(__name__, {
    "HeadConfig": "config",
    "W2SConfig": "config",
    "TorchHead": "heads",
    "AuxConfidence": "losses",
    "CrossEntropy": "losses",
    "confidence_coefficient": "losses",
    "loss_names": "losses",
    "make_loss": "losses",
    "w2s_metrics": "metrics",
    "W2SResult": "run",
    "run": "run",
})
