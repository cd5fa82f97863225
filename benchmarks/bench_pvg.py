"""Prover RL step throughput of the game's loop against a bare TRL ``GRPOTrainer``, and the toy tier's time per round.

    python benchmarks/bench_pvg.py [--steps 6] [--repeats 2] [--threads 2] [--toy-run RUN_DIR]

Both sides train the same tiny prover (built from random weights with the task's tokenizer) on
the same toy problems, batch, group size, completion cap and reward (SRC against the same frozen,
untrained tiny verifier):

* ``bare``: ``GRPOTrainer`` with the plain SRC reward function (``prover_reward_function``) and
  nothing else;
* ``overseer``: :func:`overseer.pvg.players.train_prover`, the game's own call: the same trainer
  plus its bookkeeping (per-step score and accuracy summaries, the stopping-rule callback, finite
  loss checks), without saving.

Throughput is completions per second over the training call, best of ``--repeats`` interleaved
runs. With ``--toy-run`` the seconds per round of a finished toy run (its ``metrics.json``
timings) are reported too. The last line printed is one JSON object; the target is ``ratio >= 0.9``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--toy-run", help="a finished toy run directory, for its seconds per round")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from trl import GRPOTrainer

    from overseer.models import SequenceClassifier
    from overseer.pvg import players
    from overseer.pvg.config import PVGConfig
    from overseer.pvg.rewards import prover_reward_function
    from overseer.pvg.tasks import load_task

    cfg = PVGConfig(steps_per_round=args.steps, stop_rule=False)
    problems = load_task("toy", 400, seed=0)
    work = Path(tempfile.mkdtemp(prefix="bench-pvg-"))
    prover = players.build_tiny(work / "prover", problems, cfg.prover_width, cfg.prover_layers, seed=0)
    body = players.build_tiny(work / "verifier", problems, cfg.verifier_width, cfg.verifier_layers, seed=1)
    verifier = SequenceClassifier.build(players.verifier_config(cfg, str(body)), seed=0, device="cpu")  # the game's
    verifier.model_.head.weight.data.normal_(0, 0.1)  # an untrained but non-constant scorer: SRC groups differ
    completions = args.steps * cfg.prompts_per_step * cfg.num_generations

    def bare() -> float:
        model, tokenizer = players.load_causal(cfg, prover)
        reward = prover_reward_function("src", players.verifier_scorer(verifier), players.check_answer)
        with tempfile.TemporaryDirectory() as scratch:
            config = players.rl_config(cfg, scratch, args.steps, 0)
            trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config,
                                  train_dataset=players.rl_dataset(problems, "both", 0, short=True),
                                  processing_class=tokenizer)
            start = time.perf_counter()
            trainer.train()
            return completions / (time.perf_counter() - start)

    def ours() -> float:
        start = time.perf_counter()
        players.train_prover(cfg, prover, problems, "src", work / "unused", seed=0, verifier=verifier,
                             stop=lambda history: False, save=False)
        return completions / (time.perf_counter() - start)

    bare_rates, our_rates = [], []
    for _ in range(args.repeats):
        bare_rates.append(bare())
        our_rates.append(ours())
        print(f"bare {bare_rates[-1]:.1f} completions/s, overseer {our_rates[-1]:.1f} completions/s", flush=True)
    result = {
        "bench": "pvg_rl_step", "steps": args.steps, "completions_per_step": cfg.prompts_per_step * cfg.num_generations,
        "bare_completions_per_s": round(max(bare_rates), 2), "overseer_completions_per_s": round(max(our_rates), 2),
        "ratio": round(max(our_rates) / max(bare_rates), 3), "target": 0.9, "threads": args.threads,
    }
    if args.toy_run:
        record = json.loads((Path(args.toy_run) / "metrics.json").read_text())
        rounds = record["config"]["rounds"] * len(record["config"]["seeds"])
        result["toy_run_wall_s"] = record["timings"]["wall_s"]
        result["toy_seconds_per_round"] = round(record["timings"]["wall_s"] / rounds, 1)
        result["toy_timings"] = record["timings"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
