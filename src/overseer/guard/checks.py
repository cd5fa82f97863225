"""What a guard run can refuse in a second, before any model or heavy library is loaded."""

from __future__ import annotations

from overseer.guard.config import GuardConfig
from overseer.guard.constitution import Constitution, load_constitution
from overseer.models import check_device, check_local_models, check_model_specs
from overseer.results import check_runs_dir


def check_run(cfg: GuardConfig) -> Constitution:
    """Device, model names, constitution and runs directory; returns the loaded constitution."""
    check_device(cfg.device)
    check_local_models([cfg.guarded_model, cfg.classifier_model])
    if cfg.generator is not None:
        check_model_specs([cfg.generator])
    constitution = load_constitution(cfg.constitution)
    check_runs_dir(cfg.runs_dir)
    return constitution
