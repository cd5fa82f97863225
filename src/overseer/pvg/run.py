"""``overseer.pvg.run``: play the prover-verifier game for every seed and write one run directory.

Stages finish into a work directory beside the run (``.<run name>.work/seed-<s>/``), so a killed
run resumes at the stage in flight (:mod:`overseer.pvg.game`); when every seed is done the run
directory gets the resolved config, ``metrics.json`` (per-round estimates with intervals over
problems and seeds), ``samples.parquet`` (every solution of every round on the verifier and test
splits), ``history.parquet`` (per-step bookkeeping of every round's prover), ``attack_history.parquet``
(the same for every attacker), each round's verifier and prover, and the figures; then the work
directory is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from overseer._storage import WorkDir, atomic_write_text
from overseer.errors import OverseerError
from overseer.pvg.config import TINY, PVGConfig
from overseer.pvg.game import Game, check_work, warm_start_players
from overseer.results import Estimate, RunResult, start_run, summary_formatter


@summary_formatter("pvg")
def summary_line(result: RunResult) -> str:
    """One line: the last round's helpful accuracy, sneaky success and verifier AUROC, and the baseline.

    Printed as the report's table prints them (two digits, 95% intervals).
    """
    s = result.summary
    last = result.metrics.get(f"round_{s.get('rounds')}", {})
    helpful, sneaky, verifier = (Estimate.from_dict(last.get(k))
                                 for k in ("helpful_accuracy", "sneaky_success", "verifier_auroc"))
    baseline = Estimate.from_dict(result.metrics.get("baseline_accuracy"))
    return (f"pvg {s.get('task')} {s.get('reward')}: round {s.get('rounds')} helpful accuracy {helpful:.2f}, "
            f"sneaky success {sneaky:.2f}, verifier AUROC {verifier:.2f}; correctness-only baseline {baseline:.2f}")


def _link_tree(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` with hard links where the file system allows (no second copy of weights)."""

    def link(a: str, b: str) -> Any:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)
        return b

    shutil.copytree(src, dst, copy_function=link)


def _rebase_classifier(saved: Path, body: Path, cfg: PVGConfig) -> None:
    """Point a saved tiny-verifier (or judge) classifier at its body as kept in the run (the work copy is removed).

    ``body`` is where that body will be once the run is published.
    """
    if cfg.verifier != TINY:
        return
    file = saved / "classifier" / "classifier.json"
    meta = json.loads(file.read_text())
    meta["config"]["model"] = str(body.resolve())
    # a hard link to the work copy: the atomic write puts a new file in its place instead of changing both
    atomic_write_text(file, json.dumps(meta, indent=2) + "\n")


def workers_of(cfg: PVGConfig) -> int:
    """How many seeds play at once: ``cfg.workers``, else one per seed and CPU core when the players run on the CPU.

    Tiny players on a CPU gain almost nothing from a second thread (an RL step of the toy tier:
    57 completions/s on one thread, 58-65 on two, ``benchmarks/bench_pvg.py``), so two seeds in two
    processes of one thread each play about twice as fast as one after the other.
    """
    if cfg.workers is not None:
        return min(cfg.workers, len(cfg.seeds))
    import torch

    on_cpu = cfg.device == "cpu" or (cfg.device is None and not torch.cuda.is_available())
    return min(len(cfg.seeds), os.cpu_count() or 1) if on_cpu else 1


def play_seed(cfg: PVGConfig, seed: int, work: Path, players_dir: Path, threads: int | None = None) -> dict[str, Any]:
    """One seed's whole game in ``work`` from the run's warm-started players (a worker process's job)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    check_work(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.json").write_text(pd.Series(cfg.identity()).to_json() + "\n")
    with _out_of_memory_is_an_error(f"seed {seed}'s game"):
        return Game(cfg, seed, work, players_dir).play()


@contextlib.contextmanager
def _out_of_memory_is_an_error(where: str) -> Iterator[None]:
    """An accelerator out of memory becomes one line saying what to lower (finished stages are kept)."""
    import torch

    try:
        yield
    except torch.OutOfMemoryError:
        raise OverseerError(
            f"out of memory in {where} (finished stages are kept); lower --prompts-per-step, "
            "--num-generations, --max-completion-tokens or --generation-batch-size, or pass --lora"
        ) from None


def _play_seeds(cfg: PVGConfig, work_root: Path, players_dir: Path) -> dict[int, dict[str, Any]]:
    """Every seed's game: in this process one after the other, or in ``workers_of(cfg)`` processes at once."""
    workers = workers_of(cfg)
    if workers == 1:
        return {seed: play_seed(cfg, seed, work_root / f"seed-{seed}", players_dir) for seed in cfg.seeds}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {seed: pool.submit(play_seed, cfg, seed, work_root / f"seed-{seed}", players_dir, threads)
                   for seed in cfg.seeds}
        results = {seed: future.result() for seed, future in futures.items()}
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # finished stages are kept; a rerun resumes
        raise
    pool.shutdown()
    return results


def attack_history(attacks: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per RL step of every attacker: seed, round, attack reward, step (updates behind the batch), numbers.

    The per-step records are what the paper's criterion was read from; the summary table keeps only
    the step at which it held.
    """
    columns = ["seed", "round", "attack", "step"]
    rows = [{"seed": a["seed"], "round": a["round"], "attack": a["reward"], "step": step, **record}
            for a in attacks for step, record in enumerate(a.get("history") or [])]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)


def run(cfg: PVGConfig | None = None, force: bool = False) -> RunResult:
    """Play the game of ``cfg`` (default: the toy tier) for each seed; return the run's result.

    A finished run of the same config is reused; an unfinished one resumes from its last finished
    stage. ``force`` recomputes everything.
    """
    from overseer.pvg import metrics as pvg_metrics
    from overseer.pvg import plots
    from overseer.pvg.checks import check_run

    cfg = cfg or PVGConfig()
    check_run(cfg)  # names and paths, before torch is imported
    from overseer.models import check_model

    for name in (cfg.prover, cfg.verifier):
        if name != TINY:
            check_model(name, cfg.device)  # a hub id that is neither cached nor reachable: refused before any write

    identity = cfg.identity()
    writer = start_run("pvg", identity, cfg.runs_dir, force=force, resolved=cfg.to_dict())
    if writer.existing:
        return writer.existing
    started = time.perf_counter()
    work_root = WorkDir(writer.path.parent, writer.path.name).path
    if force:
        shutil.rmtree(work_root, ignore_errors=True)
    players_dir = work_root / "players"
    with writer:
        with _out_of_memory_is_an_error("the players' warm start"):
            timings: dict[str, float] = warm_start_players(cfg, players_dir)
        results = _play_seeds(cfg, work_root, players_dir)
        for result in results.values():
            for key, value in result["timings"].items():
                timings[key] = timings.get(key, 0.0) + value
        evals = pd.concat([r["evals"].assign(seed=s) for s, r in results.items()], ignore_index=True)
        baseline = (pd.concat([r["baseline"].assign(seed=s) for s, r in results.items()], ignore_index=True)
                    if cfg.baseline else None)
        attacks = [{**a, "seed": s} for s, r in results.items() for a in r["attacks"]]
        history = pd.concat([r["history"].assign(seed=s) for s, r in results.items()], ignore_index=True)

        evals = pvg_metrics.acceptance(evals, cfg.accept_rate)
        rounds = pvg_metrics.round_estimates(evals, baseline, n=cfg.best_of_n)
        base_acc = pvg_metrics.baseline_accuracy(baseline) if baseline is not None else None
        attack_rows = pvg_metrics.attack_table(attacks)
        curves = pvg_metrics.score_curves(history)
        metrics: dict[str, Any] = {f"round_{r}": values for r, values in rounds.items()}
        if base_acc is not None:
            metrics["baseline_accuracy"] = base_acc
        last = rounds[max(rounds)]
        summary = {
            "task": cfg.task, "reward": cfg.reward, "rounds": cfg.rounds, "seeds": len(cfg.seeds),
            "helpful_accuracy": last["helpful_accuracy"]["value"], "sneaky_success": last["sneaky_success"]["value"],
            "verifier_auroc": last["verifier_auroc"]["value"],
            "baseline_accuracy": base_acc["value"] if base_acc else None,
        }
        samples = []
        for seed in cfg.seeds:
            work = work_root / f"seed-{seed}"
            for r in range(cfg.rounds):
                samples.append(pd.read_parquet(work / f"round-{r}" / "samples.parquet").assign(
                    seed=seed, split="verifier"))
        samples.append(evals.assign(split="test"))
        if baseline is not None:
            samples.append(baseline.assign(split="test", round=-1, role="baseline"))
        pd.concat(samples, ignore_index=True).to_parquet(writer.file("samples.parquet"), index=False)
        history.to_parquet(writer.file("history.parquet"), index=False)
        attack_history(attacks).to_parquet(writer.file("attack_history.parquet"), index=False)
        kept_players = writer.file("players")
        _link_tree(players_dir / "prover", kept_players / "warm-start")
        bodies = {}
        if cfg.verifier == TINY:  # the verifiers' and the judges' bases: kept, and pointed at by them
            for name in ("verifier-body", "judge-body"):
                _link_tree(players_dir / name, kept_players / name)
                bodies[name] = writer.path / "players" / name
        for seed in cfg.seeds:
            work = work_root / f"seed-{seed}"
            kept = kept_players / f"seed-{seed}"
            for r in range(1, cfg.rounds + 1):
                for part in ("verifier", "prover"):
                    _link_tree(work / f"round-{r}" / part, kept / f"round-{r}" / part)
                _rebase_classifier(kept / f"round-{r}" / "verifier", bodies.get("verifier-body", Path()), cfg)
            _link_tree(work / "judge", kept / "judge")
            _rebase_classifier(kept / "judge", bodies.get("judge-body", Path()), cfg)
            if cfg.baseline:
                _link_tree(work / "baseline" / "prover", kept / "baseline")
        figures = writer.file("figures")
        figures.mkdir(parents=True, exist_ok=True)
        plots.write_figures(figures, rounds, base_acc, attack_rows, curves, cfg)
        timings = {k: round(v, 1) for k, v in timings.items()}
        timings["compute_s"] = round(time.perf_counter() - started, 1)
        rl_rounds = [{**row, "seed": s} for s, r in results.items() for row in r["rl_rounds"]]
        writer.finish(metrics, timings=timings, summary=summary, attacks=attack_rows, rl_rounds=rl_rounds,
                      score_curves=curves.to_dict(orient="records"), n_test_problems=int(evals["problem_id"].nunique()))
    shutil.rmtree(work_root, ignore_errors=True)
    return writer.result
