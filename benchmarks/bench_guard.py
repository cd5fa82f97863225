"""Guard overhead: the cascade's and the exchange classifier's cost relative to unguarded generation.

    python benchmarks/bench_guard.py [--policy runs/guard-<hash>] [--prompts 32] [--max-new-tokens 40]
        [--threads 2] [--repeats 2]

``--policy`` is a finished guard run (or its ``policy`` folder); default: the newest ``runs/guard-*``.
The same prompts (held-out attack and benign requests of the policy's constitution, half each) are
answered three ways on the same loaded guarded model, through the live path the ``guard:`` backend uses:

* ``unguarded``: the guarded model's generation alone;
* ``cascade``: stage 1 on every exchange, stage 2 only on the escalated ones;
* ``exchange``: the exchange classifier on every exchange.

For each defence it reports, as medians over ``--repeats`` interleaved rounds, the classifiers' seconds
(timed inside the guarded call) divided by the *unguarded* run's generation seconds, and the guarded
call's wall time over the unguarded one's. The probe (the cascade's default first stage) reads its
states off the generation pass, so its own time is its head's; the hidden states it asks the
generation for, and the one extra decoding step that gives the last token its state, show up in the
wall-time overhead. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
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
    runs: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.repeats):  # interleaved, so a slow spell of the machine hits every defence alike
        for defence in ("none", "cascade", "exchange"):
            start = time.perf_counter()
            replies = guarded_generate(policy, inner, chats, config, defence)
            wall = time.perf_counter() - start
            seconds = replies[0].seconds
            runs.setdefault(defence, []).append({
                "wall_s": wall, "generate_s": seconds["generate"],
                "classifier_s": sum(v for k, v in seconds.items() if k != "generate"),
                "escalated": sum(r.outcome.escalated for r in replies) / len(replies),
                "refused": sum(r.outcome.refused for r in replies) / len(replies)})
    results = {d: {k: float(np.median([r[k] for r in rows])) for k in rows[0]} for d, rows in runs.items()}
    unguarded = results["none"]  # the unguarded model's own generation: the denominator of every overhead
    for defence in ("cascade", "exchange"):
        row = results[defence]
        row["classifier_share"] = row["classifier_s"] / unguarded["generate_s"]
        row["wall_overhead"] = (row["wall_s"] - unguarded["wall_s"]) / unguarded["wall_s"]
        print(f"{defence:9s} wall {row['wall_s']:.1f} s vs unguarded {unguarded['wall_s']:.1f} s "
              f"(+{100 * row['wall_overhead']:.1f}%), classifiers {row['classifier_s']:.2f} s "
              f"({100 * row['classifier_share']:.1f}% of unguarded generation), escalated {row['escalated']:.2f}, "
              f"refused {row['refused']:.2f}")
    print(json.dumps({"policy": str(folder), "prompts": len(chats), "max_new_tokens": args.max_new_tokens,
                      "threads": args.threads, "repeats": args.repeats,
                      "cascade_overhead": results["cascade"]["classifier_share"],
                      "exchange_overhead": results["exchange"]["classifier_share"],
                      "cascade_wall_overhead": results["cascade"]["wall_overhead"],
                      "exchange_wall_overhead": results["exchange"]["wall_overhead"],
                      "cascade_escalated": results["cascade"]["escalated"], "details": results}))


if __name__ == "__main__":
    main()
