"""What a prover-verifier run can refuse in a second, before any model or heavy library is loaded."""

from __future__ import annotations

import sys

from overseer.data import check_exists
from overseer.errors import OverseerError
from overseer.models import LIKELIHOOD, check_device, check_local_models, model_kind
from overseer.pvg.config import TINY, PVGConfig
from overseer.results import check_runs_dir


def check_run(cfg: PVGConfig) -> None:
    """Device, model names, data path and runs directory; a note when the verifier is the larger player."""
    check_device(cfg.device)
    check_local_models([m for m in (cfg.prover, cfg.verifier) if m != TINY])
    if cfg.verifier_pooling == LIKELIHOOD and cfg.verifier != TINY and model_kind(cfg.verifier) != "causal":
        raise OverseerError(
            f"verifier_pooling 'likelihood' reads a causal language model's next-token predictions; verifier "
            f"{cfg.verifier!r} is an encoder: use last, mean or first"
        )
    if cfg.data_path is not None:
        check_exists(cfg.data_path, "--data-path", "give the gsm8k jsonl file or the folder holding train.jsonl")
    check_runs_dir(cfg.runs_dir)
    note = larger_verifier_note(cfg)
    if note:
        print(f"note: {note}", file=sys.stderr)


def larger_verifier_note(cfg: PVGConfig) -> str | None:
    """A note when the verifier is not smaller than the prover (allowed: the paper ran that ablation)."""
    if cfg.prover == TINY and cfg.verifier == TINY:
        prover = cfg.prover_width**2 * cfg.prover_layers
        verifier = cfg.verifier_width**2 * cfg.verifier_layers
        if verifier >= prover:
            return (f"the tiny verifier ({cfg.verifier_layers} x {cfg.verifier_width}) is not smaller than the tiny "
                    f"prover ({cfg.prover_layers} x {cfg.prover_width}); the game is meant for a weaker verifier "
                    "(allowed: Kirchner et al. ran this ablation)")
    if cfg.prover == cfg.verifier and cfg.prover != TINY and cfg.verifier_num_layers is None:
        return (f"prover and verifier are the same model ({cfg.prover}); the game is meant for a smaller verifier "
                "(allowed: Kirchner et al. ran this ablation)")
    return None
