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

import dataclasses
import hashlib
import json
import math
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from overseer._storage import WorkDir, atomic_write_text
from overseer.audit.analysis import ALL, record_cost, summarize
from overseer.audit.config import AuditConfig
from overseer.audit.scenarios import GIVEN, Dimension, Seed, dimension_source, load_dimensions, load_seeds
from overseer.errors import OverseerError
from overseer.results import Estimate, RunResult, config_hash, start_run, summary_formatter

ROLLOUT_AXES = ("targets", "rollouts", "tags", "seed_ids", "seeds")
"""Settings that choose which rollouts are wanted, not what a finished rollout contains.

Rollouts are recorded per target and per ``SEED#K`` with a digest of their seed, so adding a target, a seed or
rollouts, or choosing a subset, reuses every matching rollout already recorded; an edited seed runs again.
Settings that change only the metrics (threshold, bootstrap, budgets, labels) are declared ``identity="report"``
in :class:`AuditConfig` and so are left out of the work folder's identity too."""


@summary_formatter("audit")
def summary_line(result: RunResult) -> str:
    """``target: elicited 0.250 [0.089, 0.532] (3/12); judge failures 0`` per target."""
    parts = []
    for target, rates in (result.metrics.get("elicitation") or {}).items():
        r = rates.get(ALL, {})
        if r.get("value") is None:
            parts.append(f"{target}: no judged rollouts")
        else:
            parts.append(f"{target}: elicited {Estimate.from_dict(r):.3f} ({r['successes']}/{r['n']})")
    fails = result.metrics.get("failures", {})
    primary = next(iter(fails.get("judge_failed", {}).values()), 0)
    parts.append(f"scenarios failed {fails.get('scenarios_failed', 0)}, primary judge failed {primary}")
    fallback = (result.metrics.get("dimension_choice") or {}).get("fallback", 0)
    if fallback:
        parts.append(f"{fallback} seeds read on concerning (no dimension named: --dimension-map)")
    warned = result.metrics.get("tool_warnings") or {}
    unseen = sum(len(v) for v in (warned.get("tools_not_seen") or {}).values())
    if unseen:
        parts.append(f"{unseen} rollouts whose target never saw its tools (its server's chat template has none)")
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


def read_records(work: Path, targets: Sequence[str], wanted: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The rollouts recorded for ``targets``.

    With ``wanted`` (sample id to seed digest), only those, and only when made from that seed's text.
    """
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
            if wanted is not None and wanted.get(record.get("sample")) != record.get("seed_digest"):
                continue
            out.append(record)
    return out


def _check(cfg: AuditConfig, given: tuple[Sequence[Seed], Sequence[Dimension]] | None = None,
           ) -> tuple[list[Seed], list[Dimension], list[dict[str, Any]]]:
    """Everything that can be refused before a model loads; ``given``: the seeds and dimensions, else cfg's."""
    from overseer.audit.judges import parse_judge_spec, read_labels
    from overseer.audit.roles import AUTO, SCRIPTED, check_model
    from overseer.audit.task import check_dimension_map, check_scripted
    from overseer.results import check_runs_dir

    check_runs_dir(cfg.runs_dir)
    if given is None:
        seeds = load_seeds(cfg.seeds, cfg.tags, cfg.seed_ids)
        if not seeds:
            raise OverseerError(f"no seeds selected from {cfg.seeds!r}")
        dims = load_dimensions(dimension_source(cfg.seeds, cfg.dimensions), cfg.dimension_names)
    else:
        seeds, dims = list(given[0]), list(given[1])
        if not seeds or not dims:
            raise OverseerError(f"an audit needs at least one seed and one dimension; got {len(seeds)} seeds and "
                                f"{len(dims)} dimensions")
        for kind, ids in (("seeds", [s.id for s in seeds]), ("dimensions", [d.name for d in dims])):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                raise OverseerError(f"two {kind} are named {twice[0]!r}")
    for spec in cfg.judges:
        kind, model = parse_judge_spec(spec)
        if kind != "classifier":
            check_model(model, "judge")
    for target in cfg.targets:
        check_model(target, "target")
    if cfg.engine == "petri":
        from overseer.audit.petri import check_petri_engine

        check_petri_engine(cfg)
    if cfg.auditor == SCRIPTED:
        check_scripted(seeds)
    elif cfg.auditor != AUTO:
        check_model(cfg.auditor, "auditor")
    check_dimension_map(seeds, dims, cfg.dimension_map)
    scripted = cfg.auditor == SCRIPTED or (cfg.auditor == AUTO and any(s.scripted for s in seeds))
    if cfg.rollouts > 1 and cfg.target_temperature == 0 and scripted:
        raise OverseerError(f"rollouts={cfg.rollouts} with a scripted auditor and target_temperature 0 would repeat "
                            "one conversation; set --target-temperature > 0 or use one rollout")
    for spec in cfg.judges:
        kind, model = parse_judge_spec(spec)
        if kind == "classifier":
            from overseer.audit.judges import ClassifierJudge

            trained = ClassifierJudge(model, spec).meta["dimensions"]
            missing = [d.name for d in dims if d.name not in trained]
            if missing:
                raise OverseerError(f"judge {spec!r} was trained on {', '.join(trained)}, not on {missing[0]!r}; "
                                    "choose dimensions with --dimension-names")
    labels = read_labels(cfg.labels) if cfg.labels else []
    if labels and len(cfg.targets) > 1:
        unscoped = [row for row in labels if "target" not in row]
        if unscoped:
            raise OverseerError(f"{cfg.labels}:{unscoped[0]['line']}: with several targets each label must name its "
                                "target (the model whose transcript was labelled)")
    if labels:
        names = {d.name for d in dims}
        bad = [row for row in labels if row["dimension"] not in names]
        if bad:
            raise OverseerError(f"{cfg.labels}:{bad[0]['line']}: unknown dimension {bad[0]['dimension']!r}; "
                                f"allowed: {', '.join(sorted(names))}")
    return seeds, dims, labels


def run(cfg: AuditConfig, force: bool = False) -> RunResult:
    """Run (or resume, or reuse) the audit ``cfg`` describes; returns the published run."""
    seeds, dims, labels = _check(cfg)
    return _audit(cfg, seeds, dims, labels, force)


def auditor_line(cfg: AuditConfig, seeds: Sequence[Seed]) -> str | None:
    """One line saying which auditor plays which seeds under ``--auditor auto``; None when every seed is scripted.

    A target as small as the offline tier's (135M) cannot follow an auditor's instructions: the line says so.
    """
    from overseer.audit.roles import AUTO, classify

    if cfg.auditor != AUTO or cfg.engine == "petri":
        return None
    free = [s.id for s in seeds if not s.scripted]
    if not free:
        return None
    scripted = len(seeds) - len(free)
    who = "each target itself" if len(cfg.targets) > 1 else f"the target {cfg.targets[0]} itself"
    line = (f"auditor: scripted for {scripted} seeds with turns; {who} as model auditor for {len(free)} seeds "
            "without (--auditor MODEL names another)")
    if any(classify(target)[0] == "overseer" for target in cfg.targets):  # a local model, not a served one
        line += "; a small local model as auditor (the offline tier's 135M) is a plumbing check, not an audit"
    return line


def run_seeds(cfg: AuditConfig, seeds: Sequence[Seed], dimensions: Sequence[Dimension],
              force: bool = False) -> RunResult:
    """Run (or resume, or reuse) an audit of ``seeds`` judged on ``dimensions``, with ``cfg``'s roles and settings.

    The engine for code that makes its scenarios (model organisms, generated seeds): they are given as
    objects, sandboxes included, and nothing is written for the audit to read back. The seeds and dimensions
    are taken as they are: ``cfg``'s ``seeds``, ``tags``, ``seed_ids``, ``dimensions`` and
    ``dimension_names`` are not read, and the run records them as ``given``. The run's identity covers
    the text of every seed and dimension, as it does for seeds read from files.
    """
    cfg = dataclasses.replace(cfg, seeds=GIVEN, tags=(), seed_ids=(), dimensions=GIVEN, dimension_names=())
    chosen, dims, labels = _check(cfg, (seeds, dimensions))
    return _audit(cfg, chosen, dims, labels, force)


def _audit(cfg: AuditConfig, seeds: list[Seed], dims: list[Dimension], labels: list[dict[str, Any]],
           force: bool) -> RunResult:
    """The audit of checked ``seeds`` and ``dims``: identity, resumable rollouts, metrics, the published run."""
    import sys

    from overseer.audit.task import seed_digest

    if line := auditor_line(cfg, seeds):
        print(line, file=sys.stderr, flush=True)

    digests = {f"{s.id}#{k}": seed_digest(s) for s in seeds for k in range(cfg.rollouts)}
    dim_text = _digest([f"{d.name}\n{d.display_name}\n{d.description}\n{d.question}\n{d.rubric}" for d in dims])
    identity = {**cfg.identity(), "seeds_digest": _digest([seed_digest(s) for s in seeds]),
                "dimensions_digest": dim_text, "judges_digest": _judges_digest(cfg.judges),
                "labels_digest": _digest([Path(cfg.labels).expanduser().read_text()]) if cfg.labels else None}
    writer = start_run("audit", identity, cfg.runs_dir, force=force, resolved=cfg.to_dict())
    if writer.existing is not None:
        return writer.existing
    work_identity = {**{k: v for k, v in cfg.identity("work").items() if k not in ROLLOUT_AXES},
                     "dimensions_digest": identity["dimensions_digest"], "judges_digest": identity["judges_digest"]}
    workdir = WorkDir(writer.path.parent, f"audit-{config_hash(work_identity)}", waiting_for="another audit")
    work = workdir.path
    with workdir:  # audits that differ only in budgets or metrics share recorded rollouts, one at a time
        if force:
            for target in cfg.targets:  # only this audit's rollouts are redone
                for record in read_records(work, [target], digests):
                    (work / "records" / target_key(target) / _record_name(record["sample"])).unlink(missing_ok=True)
        (work / "records").mkdir(exist_ok=True)
        (work / "logs").mkdir(exist_ok=True)
        started = time.perf_counter()
        budget, timings, logs = _run_targets(cfg, seeds, dims, work, digests)
        records = read_records(work, cfg.targets, digests)
    metrics = summarize(records, targets=cfg.targets, judges=cfg.judges, dimensions=[d.name for d in dims],
                        threshold=cfg.threshold, labels=labels, prices=cfg.prices, n_resamples=cfg.bootstrap)
    expected = len(digests) * len(cfg.targets)
    complete = len(records) == expected
    headline = {}
    for target, rates in metrics["elicitation"].items():
        headline[f"elicited[{target}]"] = rates[ALL]["value"]
    headline["scenarios_failed"] = metrics["failures"]["scenarios_failed"]
    with writer:
        _copy_logs(logs, writer.file("logs"))
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


def _record_name(sample: str) -> str:
    return f"{sample.replace('#', '__')}.json"


def _judges_digest(judges: Sequence[str]) -> str | None:
    """What a classifier judge's folder holds (its metadata and weight files), so a retrained judge is a new run."""
    from overseer.audit.judges import CLASSIFIER_META, parse_judge_spec

    parts = []
    for spec in judges:
        kind, model = parse_judge_spec(spec)
        if kind == "classifier":
            folder = Path(model).expanduser()
            parts.append((folder / CLASSIFIER_META).read_text())
            parts += [f"{p.relative_to(folder)}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                      for p in sorted(folder.rglob("*")) if p.is_file()]
    return _digest(parts) if parts else None


def _copy_logs(logs: Sequence[Path], dst: Path) -> None:
    """The ``.eval`` logs that hold this audit's rollouts (earlier attempts of it included)."""
    dst.mkdir(parents=True, exist_ok=True)
    for path in logs:
        shutil.copy2(path, dst / path.name)


def _run_targets(cfg: AuditConfig, seeds: list[Seed], dims: list[Dimension], work: Path,
                 digests: dict[str, str]) -> tuple[Any, dict[str, Any], list[Path]]:
    """Run the pending rollouts of every target through inspect; returns the budget, timings and logs.

    Each target has the whole budget, counted from what its recorded rollouts already spent, so the same
    audit with a larger budget continues where the smaller one stopped.
    """
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import GenerateConfig

    from overseer._progress import start_progress
    from overseer.audit.judges import build_judge
    from overseer.audit.roles import AUTO, SCRIPTED, get_role_model
    from overseer.audit.task import Budget, build_task

    budget = Budget(tokens=cfg.budget_tokens, usd=cfg.budget_usd, seconds=cfg.budget_seconds)
    requests = GenerateConfig(max_retries=cfg.max_retries, timeout=math.ceil(cfg.timeout_s),
                              max_connections=cfg.max_in_flight)
    judges = [] if cfg.engine == "petri" else [
        build_judge(j, retries=cfg.judge_retries, samples=cfg.judge_samples, temperature=cfg.judge_temperature,
                    request=requests, max_tokens=cfg.judge_max_tokens,
                    transcript_chars=cfg.judge_transcript_chars) for j in cfg.judges]
    target_config = requests.merge(GenerateConfig(max_tokens=cfg.target_max_tokens, temperature=cfg.target_temperature,
                                                  seed=cfg.seed))
    auditor_config = requests.merge(GenerateConfig(max_tokens=cfg.auditor_max_tokens))
    roles = ({} if cfg.auditor in (SCRIPTED, AUTO) or cfg.engine == "petri"
             else {"auditor": get_role_model(cfg.auditor)})
    unscripted = any(not s.scripted for s in seeds)
    timings: dict[str, Any] = {}
    logs: list[Path] = []
    for target in cfg.targets:
        folder = work / "records" / target_key(target)
        folder.mkdir(parents=True, exist_ok=True)
        recorded = read_records(work, [target], digests)
        budget.spent_tokens, budget.spent_usd = 0, 0.0
        for r in recorded:
            tokens, usd = record_cost(r, cfg.prices)
            budget.spent_tokens += tokens
            budget.spent_usd += usd
        logs += _logs_with(work / "logs", target, {r["sample"] for r in recorded})
        done = {r["sample"] for r in recorded if r["status"] == "ok"}
        pending = len(digests) - len(done)
        if pending == 0:
            continue
        bar = start_progress(pending, f"audit {target}", "rollouts", cfg.progress)

        def record(row: dict[str, Any], target: str = target, folder: Path = folder, bar: Any = bar) -> None:
            row = {"target": target, **row}
            tokens, usd = record_cost(row, cfg.prices)
            budget.spent_tokens += tokens
            budget.spent_usd += usd
            atomic_write_text(folder / _record_name(row["sample"]), json.dumps(row))
            bar.update(1)

        if cfg.engine == "petri":  # Petri's auditor, target driver and judge; its log read into records
            from overseer.audit.petri import run_petri_target

            try:
                seconds, log_path = run_petri_target(cfg, target, seeds, dims, done, work / "logs", record, digests)
            except KeyboardInterrupt:
                bar.close(failed=True)
                raise
            bar.close(failed=False)
            timings[f"target_s[{target}]"] = round(seconds, 2)
            logs += [log_path] if log_path else []
            continue
        if cfg.auditor == AUTO and unscripted:  # the target audits the seeds that have no script
            roles = {"auditor": get_role_model(target)}
        task = build_task(seeds, dims, judges, auditor=cfg.auditor if cfg.auditor in (SCRIPTED, AUTO) else "model",
                          max_turns=cfg.max_turns, target_config=target_config, auditor_config=auditor_config,
                          rollouts=cfg.rollouts, done=done, record=record, budget=budget,
                          dimension_map=cfg.dimension_map)
        started = time.perf_counter()
        try:
            logs_now = inspect_eval(task, model=get_role_model(target), model_roles=roles or None,
                                log_dir=str(work / "logs"), display="none", max_samples=cfg.max_in_flight,
                                fail_on_error=False, log_format="eval", score_display=False,
                                log_realtime=False, metadata={"overseer_target": target})
        except KeyboardInterrupt:
            bar.close(failed=True)
            raise
        bar.close(failed=False)
        timings[f"target_s[{target}]"] = round(time.perf_counter() - started, 2)
        log = logs_now[0]
        if log.location:
            logs.append(Path(log.location))
        if log.status == "cancelled":
            raise KeyboardInterrupt
        for sample in log.samples or []:  # an error inside inspect (not a recorded failure): failed, with the reason
            if sample.error is not None and not (folder / _record_name(str(sample.id))).exists():
                seed_id, _, rollout = str(sample.id).partition("#")
                record({"sample": str(sample.id), "seed": seed_id, "seed_digest": digests.get(str(sample.id)),
                        "rollout": int(rollout or 0),
                        "behavior": (sample.metadata or {}).get("behavior"), "behavior_dimension": None,
                        "status": "failed", "reason": f"error: {sample.error.message.strip().splitlines()[-1]}",
                        "turns": 0, "seconds": 0.0, "transcript": [], "events": [], "auditor_messages": [],
                        "verdicts": [], "usage": {}})
        if log.status == "error":
            message = log.error.message if log.error else "unknown error"
            raise OverseerError(f"the audit of {target} stopped: {message.splitlines()[0]}")
    return budget, timings, sorted(set(logs))


def _logs_with(folder: Path, target: str, samples: set[str]) -> list[Path]:
    """Logs in ``folder`` of ``target`` holding any of ``samples`` (the attempts that recorded them)."""
    from inspect_ai.log import read_eval_log, read_eval_log_sample_summaries

    found = []
    for path in sorted(folder.glob("*.eval")):
        try:
            header = read_eval_log(str(path), header_only=True)
            if (header.eval.metadata or {}).get("overseer_target") != target:
                continue
            if samples & {str(s.id) for s in read_eval_log_sample_summaries(str(path))}:
                found.append(path)
        except Exception:  # noqa: BLE001 - an unreadable log (torn by a crash) is left out
            continue
    return found
