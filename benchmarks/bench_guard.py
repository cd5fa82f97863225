"""Guard overhead: the cascade's and the exchange classifier's cost relative to unguarded generation.

    python benchmarks/bench_guard.py [--policy runs/guard-<hash>] [--prompts 32] [--max-new-tokens 40]
        [--threads 2] [--repeats 2]

``--policy`` is a finished guard run (or its ``policy`` folder); default: the newest ``runs/guard-*``.
The same prompts (held-out attack and benign requests of the policy's constitution, half each) are
answered three ways on the same loaded guarded model, through the live path the ``guard:`` backend uses:

* ``unguarded``: the guarded model's generation alone;
* ``cascade``: stage 1 on every exchange, stage 2 only on the escalated ones;
* ``exchange``: the exchange classifier on every exchange.

For each defence it reports the classifiers' seconds (timed inside the guarded call) divided by the
generation seconds of the same call, best of ``--repeats``. The probe (the cascade's default first
stage) reads its states off the generation pass, so its own time is its head's; the one extra decoding
step that gives the last token its state is part of the generation seconds. The last line printed is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from overseer.guard import data
from overseer.guard.backend import policy_dir
from overseer.guard.classifiers import Exchange, GuardPolicy
from overseer.guard.constitution import load_constitution
from overseer.guard.guarding import guarded_generate
from overseer.models import GenerateConfig, get_backend


def newest_run(root: Path = Path("runs")) -> Path:
    """The most recently finished guard run under ``root``."""
    runs = sorted(root.glob("guard-*/metrics.json"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise SystemExit("no finished guard run under runs/; run `overseer guard run` first or pass --policy")
    return runs[-1].parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", help="guard run folder or its policy folder (default: newest runs/guard-*)")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    folder = policy_dir(args.policy or newest_run())
    policy = GuardPolicy.load(folder)
    constitution = load_constitution(policy.constitution)
    inner = get_backend(policy.guarded_model, batch_size=16)
    policy.share_readers({policy.guarded_model: inner.loaded})
    half = args.prompts // 2
    requests = data.attack_requests(constitution, half, seed=7) + data.benign_requests(
        constitution, args.prompts - half, "eval", seed=7)
    chats = [Exchange(r.turns, "", policy.system_prompt).chat() for r in requests]
    config = GenerateConfig(max_new_tokens=args.max_new_tokens)

    inner.generate(chats[:2], config)  # warm-up: weights paged in, kernels chosen
    results: dict[str, dict[str, float]] = {}
    for defence in ("none", "cascade", "exchange"):
        best = None
        for _ in range(args.repeats):
            start = time.perf_counter()
            replies = guarded_generate(policy, inner, chats, config, defence)
            wall = time.perf_counter() - start
            seconds = replies[0].seconds
            classifier = sum(v for k, v in seconds.items() if k != "generate")
            row = {"wall_s": wall, "generate_s": seconds["generate"], "classifier_s": classifier,
                   "relative_to_generation": classifier / seconds["generate"],
                   "escalated": sum(r.outcome.escalated for r in replies) / len(replies),
                   "refused": sum(r.outcome.refused for r in replies) / len(replies)}
            if best is None or row["relative_to_generation"] < best["relative_to_generation"]:
                best = row
        results[defence] = best or {}
        print(f"{defence:9s} generation {best['generate_s']:.1f} s, classifiers {best['classifier_s']:.2f} s "
              f"({100 * best['relative_to_generation']:.1f}% of generation), escalated {best['escalated']:.2f}, "
              f"refused {best['refused']:.2f}")
    print(json.dumps({"policy": str(folder), "prompts": len(chats), "max_new_tokens": args.max_new_tokens,
                      "threads": args.threads,
                      "cascade_overhead": results["cascade"]["relative_to_generation"],
                      "exchange_overhead": results["exchange"]["relative_to_generation"],
                      "cascade_escalated": results["cascade"]["escalated"], "details": results}))


if __name__ == "__main__":
    main()
