"""Wall time and peak memory of the default weak-to-strong experiment: cold, warm, and reused.

Usage: python benchmarks/bench_w2s_default.py [extra `overseer w2s run` flags]

Each phase runs `overseer w2s run` in a fresh subprocess, with every cache pointed into a new
temporary directory:
  cold   - empty caches: converts the GGUF model, embeds every split, trains, writes the run;
  warm   - same config with --force: activations come from the cache, models are not loaded;
  reuse  - same config again: the finished run is found and returned.
Peak memory is the child's maximum resident set size. The last line printed is one JSON object.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def child(args: list[str]) -> None:
    """In the child: run the CLI, then report this process's own peak RSS."""
    from overseer.cli.main import main as cli

    code = cli(["w2s", "run", *args])
    print(json.dumps({"exit": code, "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
    sys.exit(code)


def phase(args: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run one CLI invocation in a fresh child process; return its wall time and peak RSS."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"benchmark run failed:\n{proc.stdout}\n{proc.stderr}")
    *lines, last = proc.stdout.strip().splitlines()
    print("\n".join(lines))
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(json.loads(last)["peak_rss_kib"] / 1024, 1)}


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
    extra = sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OVERSEER_CACHE_DIR": os.path.join(tmp, "cache")}
        env.pop("OVERSEER_ACTIVATION_CACHE_DIR", None)
        out = ["--out", os.path.join(tmp, "runs"), *extra]
        cold = phase(out, env)
        warm = phase([*out, "--force"], env)
        reuse = phase(out, env)
    result = {
        "benchmark": "w2s_default",
        "flags": extra,
        "cold": cold,
        "warm_activations": warm,
        "finished_run_reused": reuse,
        "warm_speedup": round(cold["seconds"] / warm["seconds"], 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
