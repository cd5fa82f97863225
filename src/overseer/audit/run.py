"""``overseer.audit.run(AuditConfig(...))``: an audit end to end, resumable, into a run directory.

1. Check every name first (seeds, dimensions, judges, models, labels, the runs folder) so that bad input
   is one line before any model loads.
2. For each target, run the inspect task over the rollouts not yet recorded. Each finished rollout is
   written at once to ``.audit-<hash>.work/records/`` beside the runs, so a killed audit resumes where it
   stopped, and the task's ``.eval`` logs go to the same folder.
3. From all records: elicitation rates with Wilson and scenario-bootstrap intervals, paired comparisons
   of targets, judge reliability, failures and costs, figures; published atomically as ``runs/audit-<hash>``
   (``metrics.json``, ``records.jsonl``, ``logs/*.eval`` for ``inspect view``, ``figures/``).

A budget stops new scenarios from starting (those in flight finish); the run is then published with
``complete: false`` and the skipped rollouts listed, and the same audit with a larger budget continues
from the recorded rollouts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from overseer.audit.analysis import ALL, record_cost, summarize
from overseer.audit.config import AuditConfig
from overseer.audit.scenarios import Dimension, Seed, load_dimensions, load_seeds
from overseer.errors import OverseerError
from overseer.results import RunResult, config_hash, start_run, summary_formatter

WORK_EXCLUDE = frozenset({"labels", "threshold", "bootstrap", "budget_tokens", "budget_usd", "budget_seconds",
                          "prices"})
"""Settings that change only the metrics or which rollouts start, not what a finished rollout contains."""


@summary_formatter("audit")
def summary_line(result: RunResult) -> str:
    """``target: elicited 0.250 [0.089, 0.532] (3/12); judge failures 0`` per target."""
    parts = []
    for target, rates in (result.metrics.get("elicitation") or {}).items():
        r = rates.get(ALL, {})
        if r.get("value") is None:
            parts.append(f"{target}: no judged rollouts")
        else:
            parts.append(f"{target}: elicited {r['value']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] "
                         f"({r['successes']}/{r['n']})")
    fails = result.metrics.get("failures", {})
    primary = next(iter(fails.get("judge_failed", {}).values()), 0)
    parts.append(f"scenarios failed {fails.get('scenarios_failed', 0)}, primary judge failed {primary}")
    return "; ".join(parts)


def _digest(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode())
        h.update(b"\x00")
    return h.hexdigest()[:16]


def target_key(target: str) -> str:
    """A folder name for a target's records (readable part plus a hash of the full string)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", target)[-40:]
    return f"{slug}-{hashlib.sha256(target.encode()).hexdigest()[:8]}"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_records(work: Path, targets: Sequence[str], wanted: set[str] | None = None) -> list[dict[str, Any]]:
    """The finished rollouts recorded for ``targets`` (only ``wanted`` sample ids, when given)."""
    out = []
    for target in targets:
        folder = work / "records" / target_key(target)
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue  # a torn file from a crash: that rollout runs again
            if wanted is None or record.get("sample") in wanted:
                out.append(record)
    return out


def _check(cfg: AuditConfig) -> tuple[list[Seed], list[Dimension], list[dict[str, Any]]]:
    """Everything that can be refused before a model loads."""
    from overseer._checks import check_runs_dir
    from overseer.audit.judges import parse_judge_spec, read_labels
    from overseer.audit.roles import SCRIPTED, check_model

    check_runs_dir(cfg.runs_dir)
    seeds = load_seeds(cfg.seeds, cfg.tags, cfg.seed_ids)
    if not seeds:
        raise OverseerError(f"no seeds selected from {cfg.seeds!r}")
    dims = load_dimensions(cfg.dimensions, cfg.dimension_names)
    for spec in cfg.judges:
        kind, model = parse_judge_spec(spec)
        if kind == "classifier":
            from overseer.audit.judges import ClassifierJudge

            ClassifierJudge(model, spec)
        else:
            check_model(model, "judge")
    for target in cfg.targets:
        check_model(target, "target")
    if cfg.auditor == SCRIPTED:
        unscripted = [s.id for s in seeds if not s.scripted]
        if unscripted:
            raise OverseerError(f"seed {unscripted[0]!r} has no scripted turns; give an auditor model (--auditor "
                                "openai/NAME@URL or an inspect model string) or add turns to the seed")
    else:
        check_model(cfg.auditor, "auditor")
    labels = read_labels(cfg.labels) if cfg.labels else []
    if labels:
        names = {d.name for d in dims}
        bad = [row for row in labels if row["dimension"] not in names]
        if bad:
            raise OverseerError(f"{cfg.labels}:{bad[0]['line']}: unknown dimension {bad[0]['dimension']!r}; "
                                f"allowed: {', '.join(sorted(names))}")
    if cfg.engine == "petri":
        try:
            import inspect_petri  # noqa: F401
        except ImportError:
            raise OverseerError("engine 'petri' needs inspect-petri, which needs Python >= 3.12: "
                                "pip install inspect-petri (or use --engine overseer)") from None
        raise OverseerError("engine 'petri' is not wired into overseer audit run yet; run "
                            "`inspect eval inspect_petri/audit -T seed_instructions=DIR` on the same seed folder")
    return seeds, dims, labels


def run(cfg: AuditConfig, force: bool = False) -> RunResult:
    """Run (or resume, or reuse) the audit ``cfg`` describes; returns the published run."""
    seeds, dims, labels = _check(cfg)
    seed_text = _digest([s.to_markdown() for s in seeds])
    dim_text = _digest([f"{d.name}\n{d.description}\n{d.question}\n{d.rubric}" for d in dims])
    identity = {**cfg.identity(), "seeds_digest": seed_text, "dimensions_digest": dim_text,
                "labels_digest": _digest([Path(cfg.labels).read_text()]) if cfg.labels else None}
    writer = start_run("audit", identity, cfg.runs_dir, force=force, resolved=cfg.to_dict())
    if writer.existing is not None:
        return writer.existing
    work_identity = {k: v for k, v in identity.items() if k not in WORK_EXCLUDE and k != "labels_digest"}
    work = writer.path.parent / f".audit-{config_hash(work_identity)}.work"
    (work / "records").mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    if force:
        shutil.rmtree(work / "records", ignore_errors=True)
        (work / "records").mkdir()
    started = time.perf_counter()
    budget, timings = _run_targets(cfg, seeds, dims, work)
    wanted = {f"{s.id}#{k}" for s in seeds for k in range(cfg.rollouts)}
    records = read_records(work, cfg.targets, wanted)
    metrics = summarize(records, targets=cfg.targets, judges=cfg.judges, dimensions=[d.name for d in dims],
                        threshold=cfg.threshold, labels=labels, prices=cfg.prices, n_resamples=cfg.bootstrap)
    expected = len(wanted) * len(cfg.targets)
    complete = len(records) == expected
    headline = {}
    for target, rates in metrics["elicitation"].items():
        headline[f"elicited[{target}]"] = rates[ALL]["value"]
    headline["scenarios_failed"] = metrics["failures"]["scenarios_failed"]
    with writer:
        _copy_logs(work / "logs", writer.file("logs"))
        with open(writer.file("records.jsonl"), "w") as fh:
            for record in sorted(records, key=lambda r: (r["target"], r["sample"])):
                fh.write(json.dumps(record) + "\n")
        from overseer.audit.plots import write_figures

        figures = write_figures(metrics, records, cfg, [d.name for d in dims], writer.file("figures"))
        writer.finish(
            metrics, timings={**timings, "audit_s": round(time.perf_counter() - started, 2)}, summary=headline,
            complete=complete, rollouts={"expected": expected, "recorded": len(records),
                                         "skipped_by_budget": budget.skipped},
            budget_reason=budget.reached() if budget.skipped else None,
            seeds=[s.id for s in seeds], dimensions=[d.name for d in dims], figures=figures,
            logs=sorted(p.name for p in writer.file("logs").glob("*.eval")),
        )
    return writer.result


def _copy_logs(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.eval")):
        shutil.copy2(path, dst / path.name)


def _run_targets(cfg: AuditConfig, seeds: list[Seed], dims: list[Dimension], work: Path) -> tuple[Any, dict[str, Any]]:
    """Run the pending rollouts of every target through inspect; returns the budget and timings."""
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import GenerateConfig

    from overseer._progress import start_progress
    from overseer.audit.judges import build_judge
    from overseer.audit.roles import SCRIPTED, get_role_model
    from overseer.audit.task import Budget, build_task

    budget = Budget(tokens=cfg.budget_tokens, usd=cfg.budget_usd, seconds=cfg.budget_seconds)
    requests = GenerateConfig(max_retries=cfg.max_retries, timeout=int(cfg.timeout_s),
                              max_connections=cfg.max_in_flight)
    judges = [build_judge(j, retries=cfg.judge_retries, samples=cfg.judge_samples, temperature=cfg.judge_temperature,
                          request=requests) for j in cfg.judges]
    target_config = requests.merge(GenerateConfig(max_tokens=cfg.target_max_tokens, temperature=cfg.target_temperature,
                                                  seed=cfg.seed))
    auditor_config = requests.merge(GenerateConfig(max_tokens=cfg.auditor_max_tokens))
    roles = {} if cfg.auditor == SCRIPTED else {"auditor": get_role_model(cfg.auditor)}
    timings: dict[str, Any] = {}
    for target in cfg.targets:
        folder = work / "records" / target_key(target)
        folder.mkdir(parents=True, exist_ok=True)
        done = {r["sample"] for r in read_records(work, [target])}
        pending = len(seeds) * cfg.rollouts - len(done & {f"{s.id}#{k}" for s in seeds for k in range(cfg.rollouts)})
        if pending == 0:
            continue
        bar = start_progress(pending, f"audit {target}", "rollouts", cfg.progress)

        def record(row: dict[str, Any], target: str = target, folder: Path = folder, bar: Any = bar) -> None:
            row = {"target": target, **row}
            tokens, usd = record_cost(row, cfg.prices)
            budget.spent_tokens += tokens
            budget.spent_usd += usd
            _write_atomic(folder / f"{row['sample'].replace('#', '__')}.json", json.dumps(row))
            bar.update(1)

        task = build_task(seeds, dims, judges, auditor=SCRIPTED if cfg.auditor == SCRIPTED else "model",
                          max_turns=cfg.max_turns, target_config=target_config, auditor_config=auditor_config,
                          rollouts=cfg.rollouts, done=done, record=record, budget=budget)
        started = time.perf_counter()
        try:
            logs = inspect_eval(task, model=get_role_model(target), model_roles=roles or None,
                                log_dir=str(work / "logs"), display="none", max_samples=cfg.max_in_flight,
                                fail_on_error=False, log_format="eval", score_display=False)
        except KeyboardInterrupt:
            bar.close(failed=True)
            raise
        bar.close(failed=False)
        timings[f"target_s[{target}]"] = round(time.perf_counter() - started, 2)
        log = logs[0]
        for sample in log.samples or []:  # an error inside inspect (not a recorded failure): failed, with the reason
            if sample.error is not None and not (folder / f"{str(sample.id).replace('#', '__')}.json").exists():
                seed_id, _, rollout = str(sample.id).partition("#")
                record({"sample": str(sample.id), "seed": seed_id, "rollout": int(rollout or 0),
                        "behavior": (sample.metadata or {}).get("behavior"), "behavior_dimension": None,
                        "status": "failed", "reason": f"error: {sample.error.message.strip().splitlines()[-1]}",
                        "turns": 0, "seconds": 0.0, "transcript": [], "events": [], "auditor_messages": [],
                        "verdicts": [], "usage": {}})
        if log.status == "cancelled":
            raise KeyboardInterrupt
        if log.status == "error":
            message = log.error.message if log.error else "unknown error"
            raise OverseerError(f"the audit of {target} stopped: {message.splitlines()[0]}")
    return budget, timings
