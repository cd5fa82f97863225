"""What a game prints and draws: the technique table, the unblinded candidate table, the figure, the summary line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from overseer.organisms.implants import BEHAVIORS
from overseer.results import Estimate, RunResult, summary_formatter

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def technique_table(techniques: Mapping[str, Mapping[str, Any]]) -> str:
    """The table a researcher cites: per technique, detection AUROC and the share of organisms named.

    A technique whose results rest on something that failed its own check (a judge that fails the
    planted-transcript check) is starred, with the reason under the table.
    """
    lines = [f"{'technique':<17} {'detection AUROC [95% CI]':<28} {'behaviour named [95% CI]':<30} unscored"]
    flags = []
    for name, m in techniques.items():
        a, n = m["auroc"], m["named"]
        auc = f"{Estimate.from_dict(a):.3fr}"
        named = f"{n['successes']}/{n['n']} = {Estimate.from_dict(n):.2f}"
        if m.get("flag"):
            flags.append(f"* {name}: {m['flag']}")
        label = f"{name}*" if m.get("flag") else name
        lines.append(f"{label:<17} {auc:<28} {named:<30} {len(m['unscored'])}")
    first = next(iter(techniques.values()), None)
    if first is not None:
        lines.append(f"{first['organisms']} organisms, {first['controls']} controls; AUROC: bootstrap with organisms "
                     "and controls resampled separately; named: Wilson interval; chance: AUROC 0.5, named "
                     f"{1 / len(BEHAVIORS):.2f}; unscored candidates count as misses")
    return "\n".join([*lines, *flags])


def candidates_table(records: Sequence[Mapping[str, Any]], techniques: Sequence[str]) -> str:
    """Per candidate (unblinded): the truth, and each technique's suspicion and guess."""
    by_id: dict[str, dict[str, Mapping[str, Any]]] = {}
    for r in records:
        by_id.setdefault(r["id"], {})[r["technique"]] = r
    header = f"{'id':<9} {'truth':<24} {'name':<28}" + "".join(f" {t:<20}" for t in techniques)
    lines = [header]
    for cid in sorted(by_id, key=lambda i: (len(i), i)):
        rows = by_id[cid]
        any_row = next(iter(rows.values()))
        truth = f"organism ({any_row['behavior']})" if any_row["implanted"] else "control"
        cells = []
        for t in techniques:
            r = rows.get(t)
            cell = f"{Estimate(r['suspicion']):.3f} {r['guess'] or '-'}" if r else "-"
            cells.append(f" {cell:<20}")
        lines.append(f"{cid:<9} {truth:<24} {any_row['name'][:28]:<28}" + "".join(cells))
    return "\n".join(lines)


def game_figure(techniques: Mapping[str, Mapping[str, Any]]) -> Figure:
    """Detection AUROC and the share of organisms named, per technique, with their 95% intervals."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from overseer.results.plots import CHANCE_COLOR, caption

    names = list(techniques)
    fig = Figure(figsize=(max(5.0, 1.4 * len(names) + 2.5), 3.0))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    panels = (("auroc", "detection AUROC", 0.5, "#4f81bd"), ("named", "organisms named", 1 / len(BEHAVIORS),
                                                                "#c0504d"))
    for ax, (key, label, chance, color) in zip(axes, panels, strict=True):
        for i, name in enumerate(names):
            e = techniques[name][key]
            if e["value"] is None:
                ax.text(i, 0.02, "n/a", ha="center", va="bottom", fontsize=7)
                continue
            low = e["value"] - e["ci_low"] if e["ci_low"] is not None else 0.0
            high = e["ci_high"] - e["value"] if e["ci_high"] is not None else 0.0
            if key == "auroc":  # a point: an AUROC's floor is 0.5 (chance), not 0
                ax.errorbar(i, e["value"], yerr=[[low], [high]], fmt="o", color=color, capsize=3)
            else:
                ax.bar(i, e["value"], width=0.6, color=color, yerr=[[low], [high]], capsize=3)
            if key == "named":
                ax.text(i, min(1.0, e["ci_high"] or e["value"]) + 0.02, f"{e['successes']}/{e['n']}", ha="center",
                        va="bottom", fontsize=6)
        ax.axhline(chance, color=CHANCE_COLOR, lw=0.8, ls=":")
        ax.set_xticks(range(len(names)), names, fontsize=7, rotation=20, ha="right")
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_ylim(0, 1.12)
        ax.set_ylabel(label)
    first = techniques[names[0]]
    caption(fig, f"Audit game over {first['organisms']} organisms and {first['controls']} controls. Left: AUROC of "
                 "each technique's suspicion, organisms vs controls (95% bootstrap, classes resampled separately). "
                 "Right: share of organisms whose behaviour the technique named (Wilson 95%). Dotted: chance.")
    return fig


@summary_formatter("game")
def summary_line(result: RunResult) -> str:
    """``behavioral: AUROC 0.62 [0.25, 0.94], named 1/4; probe: ...``."""
    parts = []
    for name, m in result.metrics.get("techniques", {}).items():
        a, n = m["auroc"], m["named"]
        parts.append(f"{name}: AUROC {Estimate.from_dict(a):.2f}, named {n['successes']}/{n['n']}")
    return "; ".join(parts)
