"""Wall time of a 3-rung offline sweep against the same runs done one by one without reuse.

Usage: python benchmarks/bench_sweep.py [--n-train 200] [--n-test 200] [--seeds 0 1] [--ladder A B C]

- sweep: ``overseer.w2s.sweep.sweep`` over the ladder (3 pairs), geo_facts, xent and logconf:
  each weak job and each ceiling is computed once and shared by every pair and method, with one
  activation cache for the whole sweep.
- no_reuse: the same 6 runs (pair x method) each done alone with ``overseer.w2s.run``, the way one
  would script them without a sweep: every run gets its own runs directory (so no job is shared)
  and a cold activation cache of its own (so every run embeds its splits and loads its models
  again). Within a run the student and ceiling still share the strong model's activations, as
  ``run`` always did.
Both phases run in this process, one after the other, with fresh temporary caches; converted
GGUF models stay in the user cache (both phases read them). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from overseer.models import ActivationCache
from overseer.w2s import run
from overseer.w2s.sweep import Entry, SweepConfig, sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ladder", nargs=3, default=["minilm-l6", "smollm2-135m-l8", "smollm2-135m"])
    parser.add_argument("--n-train", type=int, default=200)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    cfg = SweepConfig(
        name="bench", ladder=tuple(args.ladder), datasets=(Entry("geo_facts"),),
        methods=(Entry("xent"), Entry("logconf")), seeds=tuple(args.seeds),
        shared={"n_train": args.n_train, "n_test": args.n_test, "n_bootstrap": 200},
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        import os

        os.environ["OVERSEER_ACTIVATION_CACHE_DIR"] = str(root / "sweep-activations")
        start = time.perf_counter()
        result = sweep(cfg, out=root / "sweep", progress=False)
        sweep_s = time.perf_counter() - start
        assert result.ok, result.failures
        print(f"sweep: {len(result.computed)} jobs, {len(result.runs)} runs in {sweep_s:.1f}s")

        start = time.perf_counter()
        jobs = 0
        for i, plan in enumerate(cfg.plans()):
            cache = ActivationCache(root=root / f"cold-{i}", device=None)
            single = run(plan.cfg, out=root / f"alone-{i}", cache=cache)
            jobs += single.timings["jobs"]["computed"]
            print(f"alone {i}: {plan.cfg.weak} -> {plan.cfg.strong} ({plan.cfg.method}) "
                  f"{single.timings['seconds']:.1f}s")
        no_reuse_s = time.perf_counter() - start
    print(json.dumps({
        "benchmark": "w2s_sweep", "ladder": args.ladder, "n_train": args.n_train, "n_test": args.n_test,
        "seeds": args.seeds, "methods": ["xent", "logconf"], "runs": len(cfg.plans()),
        "sweep": {"seconds": round(sweep_s, 1), "jobs_computed": len(result.computed)},
        "no_reuse": {"seconds": round(no_reuse_s, 1), "jobs_computed": jobs, "activation_cache": "cold per run"},
        "ratio": round(sweep_s / no_reuse_s, 3), "target_ratio": 0.6,
    }))


if __name__ == "__main__":
    main()
