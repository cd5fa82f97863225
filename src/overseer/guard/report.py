"""``overseer guard report``: the defence table of finished guard runs (attack success, false refusals, overhead)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from overseer._storage import write_report_file
from overseer.errors import OverseerError
from overseer.results import Estimate, RunResult, read_run


def _cell(estimate: Mapping[str, Any] | None) -> str:
    return f"{Estimate.from_dict(estimate):.2f}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def load_guard(path: str | Path) -> RunResult:
    """A finished guard run, or a one-line error."""
    result = read_run(path)
    if result.pillar != "guard":
        raise OverseerError(f"{path} is a {result.pillar} run, not a guard run")
    return result


def table(result: RunResult) -> str:
    """The run's tables as Markdown: one row per defence, then attack success by transformation."""
    m = result.metrics
    cfg = result.config
    defences = list(m["asr"])
    head = ["defence", "attack success", "adaptive", "false refusals", "benign leaks", "time share", "FLOPs share",
            "tokens before halt"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for d in defences:
        cost = m.get("overhead", {}).get(d, {})
        halt = m["tokens_before_halt"][d]
        lines.append("| " + " | ".join([
            d, _cell(m["asr"][d]["all"]), _cell(m["adaptive_asr"][d]), _cell(m["frr"][d]),
            _cell(m.get("benign_leaks", {}).get(d)),
            _share(cost.get("time_share")), _share(cost.get("flops_share")),
            "-" if not halt["n"] else f"{halt['mean']:.1f} (n={halt['n']})"]) + " |")
    transforms = [t for t in m["asr"][defences[0]] if t != "all"]
    lines += ["", "| transformation | " + " | ".join(defences) + " |", "|" + "---|" * (len(defences) + 1)]
    for t in transforms:
        lines.append(f"| {t} | " + " | ".join(_cell(m["asr"][d][t]) for d in defences) + " |")
    sweep = result.record.get("cascade_sweep") or []
    if sweep:
        lines += ["", "| escalation rate | escalated share | attack success | false refusals | time share |",
                  "|---|---|---|---|---|"]
        for row in sweep:
            lines.append(f"| {row['rate']:g} | {row['escalated_share']:.2f} | {_cell(row['asr'])} | "
                         f"{_cell(row['frr'])} | {_share(row['time_share'])} |")
    if m.get("attacker_asr"):
        lines += ["", "| defence | broken with the attacker model's rounds too |", "|---|---|"]
        lines += [f"| {d} | {_cell(e)} |" for d, e in m["attacker_asr"].items()]
    if m.get("hh_rlhf_flagged"):
        lines += ["", f"hh-rlhf first turns flagged by the input classifier: {_cell(m['hh_rlhf_flagged']['input'])}"]
    n = result.record.get("n_items", {})
    title = (f"## {result.path.name}: constitution {result.summary.get('constitution')}, guarded model "
             f"{cfg.get('guarded_model')}, classifier model {cfg.get('classifier_model')}, {n.get('attack')} attacks, "
             f"{n.get('benign')} benign")
    clean = result.record.get("n_clean", {})
    notes = (
        f"Thresholds calibrated for {cfg.get('target_frr')} false refusals on the {clean.get('calibration')} of "
        f"{n.get('calibration')} other benign requests whose unguarded reply leaks nothing; false refusals are "
        f"counted on the {clean.get('benign')} such evaluation requests, and benign leaks (benign requests whose "
        "shown reply reveals a secret) on all of them; "
        f"cascade {' -> '.join(cfg.get('cascade_stages', []))} at escalation rate "
        f"{cfg.get('escalation_rate')} (escalated: {m.get('cascade_escalated_share', 0):.2f} of benign evaluation "
        f"traffic, which sets its cost, and {m.get('cascade_escalated_share_attacks', 0):.2f} of attacks). "
        "Attack success: the shown reply contains a secret (known-answer grader); adaptive: any of the single "
        "transformations or compositions got through; 95% Wilson intervals. Time share: classifier seconds over "
        "guarded-generation seconds; the probe reads its states off the generation pass, so it costs its head "
        "(the one extra decoding step that gives the last token its state is counted as generation)."
    )
    return "\n".join([title, "", *lines, "", notes]) + "\n"


def write_report(runs: Sequence[str | Path], out: str | Path | None = None) -> tuple[str, Path | None]:
    """The tables of ``runs``; written to ``out/report.md`` when ``out`` is given."""
    if not runs:
        raise OverseerError("no run given; pass one or more guard run directories (see `overseer runs --pillar guard`)")
    text = "\n".join(table(load_guard(r)) for r in runs)
    return text, write_report_file(text, out)
