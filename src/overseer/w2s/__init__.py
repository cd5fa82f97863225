"""Weak-to-strong generalization (Burns et al. 2023): weak supervisor, strong student, ceiling, PGR."""

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
