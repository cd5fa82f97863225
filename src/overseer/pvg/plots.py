"""Figures of a prover-verifier game like the paper's: scores by role over steps, attacks, accuracy vs legibility.

Each function takes the run's numbers and returns a matplotlib Figure; :func:`write_figures` saves
them (PNG at 300 dpi and PDF) with captions that say what was measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from overseer.results.plots import caption, save_figure


def _figure(width: float, height: float) -> Figure:
    """A figure drawn by the Agg canvas (no pyplot state: nothing to close, safe in threads)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _below(e: Mapping[str, Any]) -> float:
    """Length of the error bar below an estimate (0 without an interval; never negative)."""
    return 0.0 if e.get("ci_low") is None else max(0.0, e["value"] - e["ci_low"])


def _above(e: Mapping[str, Any]) -> float:
    """Length of the error bar above an estimate (0 without an interval; never negative)."""
    return 0.0 if e.get("ci_high") is None else max(0.0, e["ci_high"] - e["value"])


CELLS = {
    "score_helpful_correct": ("helpful, correct", "#1f77b4", "-"),
    "score_helpful_incorrect": ("helpful, incorrect", "#1f77b4", ":"),
    "score_sneaky_correct": ("sneaky, correct", "#d62728", ":"),
    "score_sneaky_incorrect": ("sneaky, incorrect", "#d62728", "-"),
}


def scores_over_steps(curves: pd.DataFrame) -> Figure:
    """Mean verifier score of the prover's training solutions by role x correctness, over RL steps of every round."""
    fig = _figure(7.0, 3.2)
    ax = fig.add_subplot()
    offset, ticks = 0, []
    for r, group in curves.groupby("round", sort=True):
        x = group["step"].to_numpy() + offset
        for column, (label, color, style) in CELLS.items():
            if column in group:
                ax.plot(x, group[column].to_numpy(float), style, color=color, lw=1.4,
                        label=label if r == curves["round"].min() else None)
        ticks.append((offset + (x.max() + 1 - offset) / 2 if len(x) else offset, f"round {r}"))
        offset = int(x.max()) + 1 if len(x) else offset
        ax.axvline(offset + 0.5, color="#bbbbbb", lw=0.8)
    ax.axhline(0, color="#9a9a9a", lw=0.8, ls="--")
    ax.set_xticks([t for t, _ in ticks], [label for _, label in ticks], fontsize=8)
    ax.set_ylabel("mean verifier score")
    ax.legend(fontsize=7.5, loc="best")
    caption(fig, "Each round's prover is trained from the same initial weights against that round's frozen verifier; "
                 "lines are batch means over RL steps (averaged over seeds). Sneaky-incorrect reaching helpful-correct "
                 "is the paper's stopping rule.")
    return fig


def by_round(rounds: Mapping[int, Mapping[str, Mapping[str, Any]]], baseline: Mapping[str, Any] | None) -> Figure:
    """Helpful accuracy, sneaky success and verifier AUROC by round, with 95% intervals."""
    fig = _figure(7.0, 3.0)
    axes = fig.subplots(1, 3)
    xs = sorted(rounds)
    panels = (("helpful_accuracy", "helpful accuracy"), ("sneaky_success", "sneaky success (wrong, accepted)"),
              ("verifier_auroc", "verifier AUROC"))
    for ax, (name, title) in zip(axes, panels, strict=True):
        points = [(r, rounds[r][name]) for r in xs if rounds[r].get(name, {}).get("value") is not None]
        if points:
            rs = [r for r, _ in points]
            vals = [e["value"] for _, e in points]
            low = [_below(e) for _, e in points]
            high = [_above(e) for _, e in points]
            ax.errorbar(rs, vals, yerr=[low, high], marker="o", ms=4, capsize=3, color="#333333")
        if name == "helpful_accuracy" and baseline and baseline.get("value") is not None:
            ax.axhline(baseline["value"], color="#2ca02c", ls="--", lw=1, label="correctness-only")
            ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("round")
        ax.set_xticks(xs)
        ax.set_ylim(-0.02, 1.02)
    caption(fig, "Round 0 is the warm-started prover scored by the round-1 verifier. Intervals: 95% bootstrap over "
                 "test problems and seeds.")
    return fig


def attack_steps(attacks: Sequence[Mapping[str, Any]]) -> Figure:
    """Steps a sneaky-only attacker needed to fool each round's frozen verifier (censored at the budget)."""
    fig = _figure(4.5, 3.0)
    ax = fig.add_subplot()
    kinds = sorted({a["reward"] for a in attacks})
    for i, kind in enumerate(kinds):
        rows = [a for a in attacks if a["reward"] == kind]
        for a in rows:
            status = a.get("status_per_seed") or ["censored"] * len(a["steps_per_seed"])
            for s, why in zip(a["steps_per_seed"], status, strict=True):
                if why == "no reference":
                    continue
                censored = s is None
                y = (a["budget"] or 0) + 1 if censored else s
                ax.scatter(a["round"] + 0.08 * (i - (len(kinds) - 1) / 2), y, marker="^" if censored else "o",
                           facecolors="none" if censored else f"C{i}", edgecolors=f"C{i}", s=28,
                           label=kind if a is rows[0] else None)
    ax.set_xlabel("round")
    ax.set_ylabel("attacker updates to exploit")
    if attacks:
        ax.set_xticks(sorted({a["round"] for a in attacks}))
        ax.legend(fontsize=7.5, title="attack reward", title_fontsize=7.5)
    caption(fig, "Updates until the paper's criterion held. Hollow triangles: censored, not within the budget "
                 "(plotted at budget + 1). More means "
                 "a more robust verifier.")
    return fig


def accuracy_vs_legibility(rounds: Mapping[int, Mapping[str, Mapping[str, Any]]],
                           baseline: Mapping[str, Any] | None) -> Figure:
    """Helpful accuracy against the legibility proxy (the time-limited judge's accuracy) per round."""
    fig = _figure(4.5, 3.2)
    ax = fig.add_subplot()
    for r in sorted(rounds):
        acc, judge = rounds[r].get("helpful_accuracy", {}), rounds[r].get("judge_helpful", {})
        if acc.get("value") is None or judge.get("value") is None:
            continue
        ax.errorbar(judge["value"], acc["value"], xerr=[[_below(judge)], [_above(judge)]],
                    yerr=[[_below(acc)], [_above(acc)]],
                    marker="o", ms=4, capsize=2, color="#1f77b4", alpha=0.35 + 0.65 * r / max(1, max(rounds)))
        ax.annotate(f"r{r}", (judge["value"], acc["value"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if baseline and baseline.get("value") is not None:
        ax.axhline(baseline["value"], color="#2ca02c", ls="--", lw=1, label="correctness-only accuracy")
        ax.legend(fontsize=7)
    ax.set_xlabel("legibility proxy: judge accuracy on helpful solutions")
    ax.set_ylabel("helpful accuracy")
    caption(fig, "The judge reads only the first K tokens of a solution. The gap to the dashed line is the "
                 "legibility tax.")
    return fig


def write_figures(directory: Path, rounds: Mapping[int, Any], baseline: Mapping[str, Any] | None,
                  attacks: Sequence[Mapping[str, Any]], curves: pd.DataFrame, cfg: Any) -> list[Path]:
    """Save every figure of the run into ``directory``; return the files written."""
    written = []
    written += save_figure(by_round(rounds, baseline), directory, "by_round")
    if not curves.empty:
        written += save_figure(scores_over_steps(curves), directory, "scores_over_steps")
    if attacks:
        written += save_figure(attack_steps(attacks), directory, "attack_steps")
    written += save_figure(accuracy_vs_legibility(rounds, baseline), directory, "accuracy_vs_legibility")
    return written
