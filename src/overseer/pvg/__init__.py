"""Prover-verifier games (Kirchner et al. 2024): provers trained to convince a smaller verifier stay legible.

``overseer.pvg.run(PVGConfig())`` plays the game (:mod:`overseer.pvg.game`): each round a verifier
is trained on solutions of every earlier prover, then a prover, told per prompt to be helpful or
sneaky, is trained by RL (TRL) against it. The science core: the prover's rewards
(:mod:`overseer.pvg.rewards`), the verifier's Bradley-Terry loss (:mod:`overseer.pvg.verifier`), the
tasks (:mod:`overseer.pvg.tasks`, :mod:`overseer.pvg.toy`), the players (:mod:`overseer.pvg.players`)
and the per-round metrics (:mod:`overseer.pvg.metrics`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from overseer._lazy import lazy_exports

if TYPE_CHECKING:
    from overseer.pvg.config import PVGConfig
    from overseer.pvg.rewards import (
        cgc_rewards,
        correctness_rewards,
        get_reward,
        goodhart_rewards,
        prover_reward_function,
        reward_names,
        src_rewards,
    )
    from overseer.pvg.run import run
    from overseer.pvg.toy import (
        Problem,
        correct_solution,
        is_correct,
        make_problems,
        parse_answer,
        sneaky_solution,
        split_problems,
        to_samples,
    )
    from overseer.pvg.verifier import bradley_terry_loss, pair_loss, pairs

__all__ = [
    "PVGConfig",
    "Problem",
    "bradley_terry_loss",
    "pair_loss",
    "cgc_rewards",
    "correct_solution",
    "correctness_rewards",
    "get_reward",
    "goodhart_rewards",
    "is_correct",
    "make_problems",
    "pairs",
    "parse_answer",
    "prover_reward_function",
    "reward_names",
    "run",
    "sneaky_solution",
    "split_problems",
    "src_rewards",
    "to_samples",
]

# Imported on first use, so that the numpy-only rewards do not pull in torch.
lazy_exports(__name__, {
    **dict.fromkeys(
        ("cgc_rewards", "correctness_rewards", "get_reward", "goodhart_rewards", "prover_reward_function",
         "reward_names", "src_rewards"),
        "rewards",
    ),
    **dict.fromkeys(
        ("Problem", "correct_solution", "is_correct", "make_problems", "parse_answer", "sneaky_solution",
         "split_problems", "to_samples"),
        "toy",
    ),
    **dict.fromkeys(("bradley_terry_loss",
    "pair_loss", "pairs"), "verifier"),
    "PVGConfig": "config",
    "run": "run",
})
