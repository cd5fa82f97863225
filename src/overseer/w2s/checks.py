"""What a weak-to-strong run can refuse in a second, before torch, transformers or scikit-learn is imported.

``overseer w2s run`` calls :func:`check_run` before it imports the pillar's run module, and
:func:`overseer.w2s.run` calls it again (cheaply), so library users get the same early refusals.
"""

from __future__ import annotations

import os

from overseer.data import check_dataset
from overseer.models import check_device, check_local_models
from overseer.results import check_runs_dir
from overseer.w2s.config import W2SConfig


def check_run(cfg: W2SConfig, out: str | os.PathLike[str] | None) -> None:
    """Everything a weak-to-strong run can refuse before loading data or models: device, names, paths."""
    check_device(cfg.device)
    check_dataset(cfg.dataset, cfg.dataset_args)
    check_local_models(tuple(m for m in (cfg.weak_model, cfg.strong) if m is not None), cfg.trust_remote_code)
    check_runs_dir(out)
