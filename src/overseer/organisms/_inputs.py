"""What an organisms evaluation that runs as an audit shares: its identity, and the audit it starts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from overseer.audit import AuditConfig, Seed, dimensions_from_mapping, run_seeds
from overseer.results import RunResult, RunWriter, check_runs_dir, config_hash, start_run


def inputs_digest(prefix: str, seeds: Sequence[Seed], dimensions: Mapping[str, Any]) -> str:
    """``<prefix>-<hash of the seeds' text and the dimensions>``: what an evaluation's audit is asked.

    The value is the name of the folder earlier versions wrote the seeds to, kept so that their finished
    runs keep their identity.
    """
    return f"{prefix}-{config_hash({'seeds': [s.to_markdown() for s in seeds], 'dims': dimensions})}"


def audit_order(seeds: Sequence[Seed]) -> list[Seed]:
    """The seeds by id: the order in which the audit has always run an evaluation's rollouts."""
    return sorted(seeds, key=lambda s: s.id)


def evaluation_audit(cfg: Any, max_turns: int) -> AuditConfig:
    """The audit whose rollouts an evaluation scores: its targets, judges, sampling and reporting, ``max_turns`` long.

    ``cfg`` is an evaluation config with ``targets``, ``judges``, ``samples`` (rollouts per seed),
    ``max_tokens``, ``temperature``, ``threshold``, ``seed``, ``bootstrap``, ``max_in_flight``,
    ``max_retries``, ``runs_dir`` and ``progress``.
    """
    return AuditConfig(targets=cfg.targets, judges=cfg.judges, rollouts=cfg.samples, max_turns=max_turns,
                       target_max_tokens=cfg.max_tokens, target_temperature=cfg.temperature, threshold=cfg.threshold,
                       seed=cfg.seed, bootstrap=cfg.bootstrap, max_in_flight=cfg.max_in_flight,
                       max_retries=cfg.max_retries, runs_dir=cfg.runs_dir, progress=cfg.progress)


def start_audited_run(pillar: str, cfg: Any, chosen: Sequence[Seed], dimensions: Mapping[str, Any],
                      force: bool = False) -> tuple[RunWriter, RunResult | None, list[dict[str, Any]]]:
    """Start the ``pillar`` run of ``cfg`` and, unless it is finished, the audit that produces its rollouts.

    ``cfg`` has ``runs_dir`` and ``audit_config()``. Returns the writer, the audit's result and its records;
    when a finished run with this identity exists, the audit is None (the caller returns ``writer.existing``).
    """
    check_runs_dir(cfg.runs_dir)
    identity = {**cfg.identity(), "inputs": inputs_digest(f".{pillar}", chosen, dimensions)}
    writer = start_run(pillar, identity, cfg.runs_dir, force=force, resolved=cfg.to_dict())
    if writer.existing is not None:
        return writer, None, []
    audit = run_seeds(cfg.audit_config(), audit_order(chosen), dimensions_from_mapping(dimensions, pillar),
                      force=force)
    records = [json.loads(line) for line in (audit.path / "records.jsonl").read_text().splitlines()]
    return writer, audit, records
