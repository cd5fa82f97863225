"""What an organisms evaluation that runs as an audit shares: its inputs, and the audit it starts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from overseer._storage import atomic_directory
from overseer.audit.scenarios import Seed
from overseer.results import RunResult, RunWriter, config_hash, start_run


def write_audit_inputs(folder: Path, seeds: Sequence[Seed], dimensions: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``seeds`` (one Petri seed file each) and ``dimensions`` (YAML) under ``folder``, once; return their paths.

    The folder is named by a hash of what it holds, so it is written only when missing, through a
    staging folder renamed into place: a reader never sees half of it.
    """
    import yaml

    if not (folder / "seeds").is_dir():
        with atomic_directory(folder) as staging:
            (staging / "seeds").mkdir()
            for seed in seeds:
                (staging / "seeds" / f"{seed.id}.md").write_text(seed.to_markdown())
            (staging / "dimensions.yaml").write_text(yaml.safe_dump(dict(dimensions), sort_keys=False, width=100))
    return folder / "seeds", folder / "dimensions.yaml"


def start_audited_run(pillar: str, cfg: Any, chosen: Sequence[Seed], dimensions: Mapping[str, Any],
                      force: bool = False) -> tuple[RunWriter, RunResult | None, list[dict[str, Any]]]:
    """Start the ``pillar`` run of ``cfg`` and, unless it is finished, the audit that produces its rollouts.

    ``cfg`` has ``runs_dir`` and ``audit_config(seeds_dir, dims_file)``. Returns the writer, the audit's
    result and its records; when a finished run with this identity exists, the audit is None (the caller
    returns ``writer.existing``).
    """
    import json

    from overseer._checks import check_runs_dir
    from overseer.audit import run as run_audit

    runs = check_runs_dir(cfg.runs_dir)
    inputs = runs / f".{pillar}-{config_hash({'seeds': [s.to_markdown() for s in chosen], 'dims': dimensions})}"
    seeds_dir, dims_file = write_audit_inputs(inputs, chosen, dimensions)
    identity = {**cfg.identity(), "inputs": inputs.name}
    writer = start_run(pillar, identity, cfg.runs_dir, force=force, resolved=cfg.to_dict())
    if writer.existing is not None:
        return writer, None, []
    audit = run_audit(cfg.audit_config(seeds_dir, dims_file), force=force)
    records = [json.loads(line) for line in (audit.path / "records.jsonl").read_text().splitlines()]
    return writer, audit, records
