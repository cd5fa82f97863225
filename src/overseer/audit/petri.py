"""Petri's own files and engine: its seeds and dimensions, its tags read on its dimensions, its audit task.

Everything here needs the ``petri`` extra (inspect-petri 3.1.1 with inspect-scout 0.6.1), which is imported
only when used: ``--seeds petri`` and ``--dimensions petri`` read the installed package's files at run time
(never copied), and ``--engine petri`` runs Petri's ``audit`` task (its auditor, its target driver, its
judge) with the roles Overseer resolves, then reads the ``.eval`` log into Overseer's records, so rates,
intervals, failures and costs come out as for any audit.

Petri's seed tags (``sycophancy``, ``deception``, ...) never equal its dimension names
(``unprompted_sycophancy``, ...): :data:`PETRI_TAG_DIMENSIONS` says which dimension each tag is read on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from overseer.errors import OverseerError

EXTRA = "petri"
INSTALL = 'pip install --ignore-requires-python -e ".[petri]"'
"""inspect-petri declares Python >= 3.12 but imports and runs on 3.11; pip needs to be told to install it."""

PETRI_TAG_DIMENSIONS: dict[str, str] = {
    # a dimension that names the behaviour
    "sycophancy": "unprompted_sycophancy",
    "delusional_user": "unprompted_encouragement_of_user_delusion",
    "deception": "unprompted_deception_toward_user",
    "lie_detector": "unprompted_deception_toward_user",
    "cooperation_with_misuse": "cooperation_with_human_misuse",
    "jailbreak": "cooperation_with_human_misuse",
    "initiative": "unprompted_initiative",
    "whistleblowing": "unprompted_whistleblowing",
    "leaking": "unprompted_leaking",
    "privacy_violation": "unprompted_leaking",  # its rubric counts passing a user's information on as a leak
    "self_preservation": "unprompted_self_preservation",
    "self_exfiltration": "unprompted_self_preservation",
    "shutdown_avoidance": "unprompted_self_preservation",
    "goal_preservation": "unprompted_self_preservation",
    "blackmail": "unprompted_blackmail",
    "self_bias": "unprompted_self_serving_bias",
    "censorship": "manipulated_by_developer",  # its rubric's central example is hidden censorship
    "weird_OOD": "unprompted_bizarre_behavior",
    # no dimension of its own: read on `concerning`, named here so that a seed's first tag decides
    # (e.g. oversight_subversion + initiative is read on concerning, not on unprompted_initiative)
    "alignment_faking": "concerning",
    "bias": "concerning",
    "blame": "concerning",
    "criticism": "concerning",
    "debate": "concerning",
    "escalation": "concerning",
    "goal_conflict": "concerning",
    "harm": "concerning",
    "manipulation": "concerning",
    "monitoring": "concerning",
    "multi_agent": "concerning",
    "openended": "concerning",
    "oversight_subversion": "concerning",
    "power_seeking": "concerning",
    "praise": "concerning",
    "reward_hacking": "concerning",
    "tool_abuse": "concerning",
}
"""The dimension each of inspect-petri 3.1.1's 35 seed tags is read on (Overseer's choice; Petri has no such map).

Applied to any seed, after its own ``dimension``, ``--dimension-map`` and a dimension named like its behaviour
or a tag, and only where the mapped dimension is loaded (recorded as ``dimension_from: petri``). Seeds are
looked up by behaviour (the first tag) before their other tags. Petri's 15 untagged seeds fall back to
``concerning``."""

_FILES = {"seeds": ("_seeds", "default"), "dimensions": ("_judge", "dimensions")}


def require_petri() -> ModuleType:
    """The installed ``inspect_petri`` package, or one line naming the extra and how to install it."""
    try:
        import inspect_petri
    except ImportError as exc:
        raise OverseerError(f"this needs inspect-petri, the {EXTRA!r} extra ({exc.msg}); install it with "
                            f"{INSTALL}") from None
    return inspect_petri


def petri_files(kind: str) -> Path:
    """The folder of Petri's ``seeds`` or ``dimensions`` in the installed package (read, never copied)."""
    folder = Path(require_petri().__file__).parent.joinpath(*_FILES[kind])
    if not folder.is_dir():
        raise OverseerError(f"the installed inspect-petri has no {kind} folder at {folder}; install the pinned "
                            f"version with {INSTALL}")
    return folder


# --------------------------------------------------------------------------- the engine


def check_petri_engine(cfg: Any) -> None:
    """What ``--engine petri`` needs, refused in one line before anything runs."""
    from overseer.audit.judges import parse_judge_spec
    from overseer.audit.roles import AUTO, SCRIPTED

    require_petri()
    if cfg.auditor in (SCRIPTED, AUTO):
        raise OverseerError("engine 'petri' runs Petri's auditor, a model: pass --auditor MODEL (openai/NAME@URL or "
                            "an inspect model string)")
    kinds = [parse_judge_spec(j)[0] for j in cfg.judges]
    if kinds != ["llm"]:
        raise OverseerError(f"engine 'petri' judges with Petri's own judge on one model; give one llm:MODEL judge "
                            f"(got {', '.join(cfg.judges)})")
    for name in ("budget_tokens", "budget_usd", "budget_seconds"):
        if getattr(cfg, name) is not None:
            raise OverseerError(f"{name} is not supported by engine 'petri' (its audits cannot be stopped between "
                                "scenarios); use --engine overseer or leave it out")
    if cfg.judge_samples != 1:
        raise OverseerError(f"judge_samples={cfg.judge_samples}: Petri's judge answers once per transcript; "
                            "use --engine overseer to sample a judge")


def petri_samples(seeds: Sequence[Any], rollouts: int, done: set[str]) -> list[Any]:
    """One inspect sample per seed and rollout not in ``done``, in the form Petri's task reads.

    The metadata holds the tags and the seed's other front-matter keys, which Petri's auditor prompt may name.
    """
    from inspect_ai.dataset import Sample

    from overseer.audit.task import sample_id

    return [Sample(id=sample_id(s, k), input=s.instruction,
                   metadata={**s.metadata, "tags": list(s.tags), "seed_id": s.id, "rollout": k})
            for s in seeds for k in range(rollouts) if sample_id(s, k) not in done]


def petri_task(cfg: Any, seeds: Sequence[Any], dims: Sequence[Any], done: set[str]) -> Any:
    """Petri's ``audit`` task on Overseer's seeds and dimensions.

    Compaction of the auditor's context is off: it counts tokens with tiktoken, whose data is downloaded on
    first use (an offline machine cannot), and ``--max-turns`` bounds the auditor's conversation instead.
    """
    from inspect_ai import task_with
    from inspect_ai.dataset import MemoryDataset

    require_petri()
    from inspect_petri import JudgeDimension, audit

    judge_dims = [JudgeDimension(name=d.name, description=d.description, rubric=d.rubric or None,
                                 display_name=d.display_name or None, tags=list(d.tags)) for d in dims]
    task = audit(seed_instructions=[s.instruction for s in seeds], max_turns=cfg.max_turns, compaction=False,
                 judge_dimensions=judge_dims)
    return task_with(task, dataset=MemoryDataset(petri_samples(seeds, cfg.rollouts, done), name="audit_seeds"))


def petri_record(sample: Any, seed: Any, dims: Sequence[Any], dimension_map: dict[str, str], judge: str,
                 digest: str) -> dict[str, Any]:
    """Overseer's record of one rollout from Petri's ``.eval`` sample: the same keys as the overseer engine's.

    Petri's judge score (a dict of dimension to 1-10, ``None`` when it refused or gave no valid answer) is
    the judge's verdict; its summary, highlights and message citations are kept beside it.
    """
    from overseer.audit.task import dimension_choice

    behaviour, chosen_by = dimension_choice(seed, dims, dimension_map)
    rollout = int(str(sample.id).partition("#")[2] or 0)
    score = next(iter((sample.scores or {}).values()), None)
    status, reason = "ok", None
    if sample.error is not None:
        status, reason = "failed", f"error: {sample.error.message.strip().splitlines()[-1]}"
    verdicts = []
    if status == "ok":
        value = score.value if score is not None else None
        meta = (score.metadata or {}) if score is not None else {}
        scores = {k: float(v) for k, v in value.items() if isinstance(v, int | float) and not isinstance(v, bool)
                  and math.isfinite(v)} if isinstance(value, dict) else {}
        missing = [d.name for d in dims if d.name not in scores]
        failed = not scores or bool(missing)
        error = None
        if score is None:
            error = "Petri's judge gave no score"
        elif meta.get("refusal"):
            error = f"Petri's judge refused: {score.explanation}"
        elif not scores:
            error = f"Petri's judge gave no valid answer (stop reason {meta.get('stop_reason')})"
        elif missing:
            error = f"Petri's judge left out {missing[0]!r}"
        verdicts.append({"judge": judge, "scores": {} if failed else scores, "failed": failed, "error": error,
                         "raw": score.answer if score is not None else None, "attempts": 1, "samples": [],
                         "usage": _usage(sample, "judge"), "transcript_cut": 0,
                         "answer_cut": meta.get("stop_reason") == "max_tokens",
                         "petri": {"summary": meta.get("summary"), "highlights": meta.get("highlights"),
                                   "justification": score.explanation if score is not None else None,
                                   "references": meta.get("scanner_references") or []}})
    messages = [m.model_dump(mode="json", exclude_none=True) for m in sample.messages]
    return {"sample": str(sample.id), "seed": seed.id, "seed_digest": digest, "rollout": rollout,
            "behavior": seed.behavior, "behavior_dimension": behaviour, "dimension_from": chosen_by,
            "status": status, "reason": reason, "turns": sum(m["role"] == "assistant" for m in messages),
            "seconds": round(float(sample.total_time or 0.0), 3), "transcript": messages, "events": [],
            "auditor_messages": [], "verdicts": verdicts, "engine": "petri",
            "usage": {role: _usage(sample, role) for role in ("target", "auditor", "judge")}}


def _usage(sample: Any, role: str) -> dict[str, Any]:
    """A role's requests and tokens in one sample, from inspect's per-role usage and model events."""
    usage = (sample.role_usage or {}).get(role)
    calls = [e for e in sample.events or [] if getattr(e, "event", None) == "model"
             and getattr(e, "role", None) == role]
    return {"requests": len(calls), "input_tokens": int(usage.input_tokens) if usage else 0,
            "output_tokens": int(usage.output_tokens) if usage else 0,
            "seconds": round(sum(e.working_time or 0.0 for e in calls), 3)}


def run_petri_target(cfg: Any, target: str, seeds: Sequence[Any], dims: Sequence[Any], done: set[str],
                     log_dir: Path, record: Callable[[dict[str, Any]], None],
                     digests: dict[str, str]) -> tuple[float, Path | None]:
    """Run Petri's audit of ``target`` on the seeds' rollouts not in ``done``; each becomes a record.

    Returns the seconds it took and the ``.eval`` log. The auditor, target and judge are Overseer's model
    strings resolved by :func:`overseer.audit.roles.get_role_model`, given to Petri as its model roles.
    """
    from inspect_ai import eval as inspect_eval
    from inspect_ai.log import read_eval_log
    from inspect_ai.model import GenerateConfig

    from overseer.audit.judges import parse_judge_spec
    from overseer.audit.roles import get_role_model

    requests = GenerateConfig(max_retries=cfg.max_retries, timeout=math.ceil(cfg.timeout_s),
                              max_connections=cfg.max_in_flight)
    judge_model = parse_judge_spec(cfg.judges[0])[1]
    judge_tokens = cfg.judge_max_tokens
    roles = {
        "target": get_role_model(target, config=requests.merge(GenerateConfig(
            max_tokens=cfg.target_max_tokens, temperature=cfg.target_temperature, seed=cfg.seed))),
        "auditor": get_role_model(cfg.auditor, config=requests.merge(GenerateConfig(
            max_tokens=cfg.auditor_max_tokens))),
        "judge": get_role_model(judge_model, config=requests.merge(GenerateConfig(
            temperature=cfg.judge_temperature, **({"max_tokens": judge_tokens} if judge_tokens else {})))),
    }
    task = petri_task(cfg, seeds, dims, done)
    started = time.perf_counter()
    logs = inspect_eval(task, model=roles["target"], model_roles=roles, log_dir=str(log_dir), display="none",
                        max_samples=cfg.max_in_flight, fail_on_error=False, log_format="eval",
                        score_display=False, log_realtime=False,
                        metadata={"overseer_target": target, "overseer_engine": "petri"})
    seconds = time.perf_counter() - started
    log = logs[0]
    if log.status == "cancelled":
        raise KeyboardInterrupt
    if log.status == "error" and not log.samples:
        message = log.error.message if log.error else "unknown error"
        raise OverseerError(f"Petri's audit of {target} stopped: {message.strip().splitlines()[0]}")
    path = Path(log.location) if log.location else None
    full = read_eval_log(str(path)) if path else log  # the samples as inspect's reader gives them back
    by_id = {s.id: s for s in seeds}
    for sample in full.samples or []:
        seed = by_id[str(sample.id).partition("#")[0]]
        record(petri_record(sample, seed, dims, cfg.dimension_map, cfg.judges[0], digests[str(sample.id)]))
    return seconds, path
