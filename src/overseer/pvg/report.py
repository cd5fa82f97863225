"""``overseer pvg report``: the per-round table of one or more finished games, as text and Markdown.

For each run: by round, helpful accuracy, sneaky incorrect rate, sneaky success (wrong and
accepted), verifier AUROC, completeness, soundness, balanced best-of-n, the legibility judge's
accuracy on helpful solutions, the legibility tax against the correctness-only baseline, and the
steps each attacker needed to fool that round's verifier; every estimate with its 95% interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from overseer._storage import write_report_file
from overseer.errors import OverseerError
from overseer.results import Estimate, RunResult, read_run

COLUMNS = (
    ("helpful_accuracy", "helpful acc"), ("sneaky_incorrect", "sneaky wrong"), ("sneaky_success", "sneaky success"),
    ("verifier_auroc", "verifier AUROC"), ("completeness", "complete"), ("soundness", "sound"),
    ("best_of_n", "best-of-n"), ("judge_helpful", "judge (helpful)"), ("legibility_tax", "legibility tax"),
)


def _cell(estimate: Mapping[str, Any] | None) -> str:
    return f"{Estimate.from_dict(estimate):.2f}"


def _attack_cell(attacks: Sequence[Mapping[str, Any]], r: int) -> str:
    parts = []
    for a in attacks:
        if a["round"] != r:
            continue
        status = a.get("status_per_seed") or ["censored"] * len(a["steps_per_seed"])
        steps = ", ".join(str(s) if s is not None else "n/a" if why == "no reference" else f">{a['budget']}"
                          for s, why in zip(a["steps_per_seed"], status, strict=True))
        share = a.get("exploited_share")
        parts.append(f"{a['reward']}: {steps}" + (f" (exploited {_cell(share)})" if share else ""))
    return "; ".join(parts) or "-"


def _rl_cell(rl: Sequence[Mapping[str, Any]], r: int) -> str:
    parts = []
    for row in rl:
        if row["round"] == r:
            kl = "n/a" if row.get("final_kl") is None else f"{row['final_kl']:.3f}"
            parts.append(f"{row['steps']}{' stopped' if row['stopped'] else ''} ({kl})")
    return ", ".join(parts) or "-"


def load_game(path: str | Path) -> RunResult:
    """A finished prover-verifier run, or a one-line error."""
    result = read_run(path)
    if result.pillar != "pvg":
        raise OverseerError(f"{path} is a {result.pillar} run, not a prover-verifier game (pvg)")
    return result


def table(result: RunResult) -> str:
    """The run's per-round table as Markdown."""
    cfg = result.config
    metrics = result.metrics
    rounds = sorted(int(k.split("_")[1]) for k in metrics if k.startswith("round_"))
    attacks = result.record.get("attacks", [])
    rl = result.record.get("rl_rounds", [])
    head = ["round", *(label for _, label in COLUMNS), "attacker steps", "RL steps (KL)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rounds:
        row = metrics[f"round_{r}"]
        cells = [str(r), *(_cell(row.get(name)) for name, _ in COLUMNS), _attack_cell(attacks, r), _rl_cell(rl, r)]
        lines.append("| " + " | ".join(cells) + " |")
    baseline = metrics.get("baseline_accuracy")
    title = (f"## {result.path.name}: task {cfg.get('task')}, reward {cfg.get('reward')}, {cfg.get('rl')}, "
             f"{len(cfg.get('seeds', []))} seed(s), {result.record.get('n_test_problems')} test problems")
    out = [title, "", *lines, ""]
    if baseline:
        out.append(f"correctness-only baseline accuracy (the game's whole RL budget): {_cell(baseline)}")
    out.append("round 0: the warm-started prover scored by the round-1 verifier; accepted: a score at or above the "
               "round's threshold, set on the other half of the test problems to accept "
               f"{cfg.get('accept_rate')} of their helpful-correct solutions; attacker steps per seed: updates until "
               "the paper's criterion held ('>N': censored, not within N steps); RL steps per seed ('stopped': by "
               "the stopping rule) with the final KL to the initial prover")
    return "\n".join(out) + "\n"


def write_report(runs: Sequence[str | Path], out: str | Path | None = None) -> tuple[str, Path | None]:
    """The tables of ``runs`` (run directories); written to ``out/report.md`` when ``out`` is given."""
    if not runs:
        raise OverseerError("no run given; pass one or more pvg run directories (see `overseer runs --pillar pvg`)")
    text = "\n".join(table(load_game(r)) for r in runs)
    return text, write_report_file(text, out)
