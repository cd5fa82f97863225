"""Plots of weak-to-strong runs, as functions of metrics (no global state, returns a Figure)."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from overseer.results.plots import CHANCE_COLOR, caption  # noqa: E402

COLORS = {"weak": "#8c8c8c", "student": "#3a78c2", "baseline": "#d9822b", "ceiling": "#2b2b2b"}
CHANCE = 0.5
"""Chance accuracy of every weak-to-strong task: each is a binary, class-balanced classification."""


def interval_text(n_test: int | None = None, n_seeds: int = 1) -> str:
    """What a run's error bars are: 95% bootstrap intervals over its test examples (and seeds)."""
    over = f"{n_test} test examples" if n_test else "test examples"
    if n_seeds > 1:
        return f"95% bootstrap intervals over {n_seeds} seeds × {over} (seeds resampled, then examples)"
    return f"95% bootstrap intervals over {over}"


def plot_accuracies(metrics: dict[str, Any], title: str = "", n_test: int | None = None, n_seeds: int = 1) -> Figure:
    """Weak, student, noise-matched baseline and ceiling test accuracy as bars up from chance (0.5), and PGR.

    Args:
        metrics: the run's ``metrics`` section (``weak``/``student``/``baseline``/``ceiling`` accuracy,
            ``pgr``, ``baseline_pgr``; runs without a baseline draw three bars).
        title: first title line (the run: dataset, models, method).
        n_test: test examples per seed, named in the caption.
        n_seeds: seeds pooled into the intervals.
    """
    fig, ax = plt.subplots(figsize=(5.4, 3.8))
    roles = [r for r in ("weak", "student", "baseline", "ceiling") if r in metrics]
    values = [metrics[r]["accuracy"]["value"] for r in roles]
    lows = [metrics[r]["accuracy"]["ci_low"] for r in roles]
    highs = [metrics[r]["accuracy"]["ci_high"] for r in roles]
    lows = [v if lo is None else lo for v, lo in zip(values, lows, strict=True)]
    highs = [v if hi is None else hi for v, hi in zip(values, highs, strict=True)]
    errors = [[v - lo for v, lo in zip(values, lows, strict=True)],
              [hi - v for v, hi in zip(values, highs, strict=True)]]
    # Bars rise from chance: a bar's height is what the model adds over guessing (below chance, it hangs down).
    ax.bar(roles, [v - CHANCE for v in values], bottom=CHANCE, yerr=errors, capsize=6, width=0.6,
           color=[COLORS[r] for r in roles], error_kw={"elinewidth": 1.2})
    ax.axhline(CHANCE, color=CHANCE_COLOR, lw=1, ls="--", zorder=0)
    ax.text(1.01, CHANCE, "chance", transform=ax.get_yaxis_transform(), ha="left", va="center", fontsize=7,
            color=CHANCE_COLOR)  # right of the axes: never over a bar
    for i, (v, hi) in enumerate(zip(values, highs, strict=True)):
        ax.text(i, hi + 0.008, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    bottom = min(CHANCE, *lows)
    ax.set_ylim(min(CHANCE, bottom) - 0.025, 1.0 if max(highs) < 0.95 else 1.05)  # the chance line stays visible
    ax.set_xlim(-0.55, len(roles) - 0.45)
    ax.set_xticks(range(len(roles)), ["noise-matched\nbaseline" if r == "baseline" else r for r in roles])
    ax.set_ylabel("test accuracy")
    pgr_text = _pgr_text("PGR", metrics["pgr"]["accuracy"])
    if "baseline_pgr" in metrics:
        pgr_text += "; " + _pgr_text("baseline PGR", metrics["baseline_pgr"]["accuracy"])
    ax.set_title(f"{title}\n{pgr_text}" if title else pgr_text, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    caption(fig, f"Error bars: {interval_text(n_test, n_seeds)}. Dashed line: chance (0.5). "
                 "PGR = (student − weak) / (ceiling − weak), its interval from the same resamples. Noise-matched "
                 "baseline: a student trained on the truth flipped at the weak labels' error rates per class.")
    return fig


def _pgr_text(label: str, pgr: dict[str, Any]) -> str:
    if pgr["value"] is None:
        return f"{label} undefined (the ceiling does not beat the weak model)"
    if pgr.get("ci_low") is None or pgr.get("ci_high") is None:
        return f"{label} {pgr['value']:.2f}"
    return f"{label} {pgr['value']:.2f} [95% CI {pgr['ci_low']:.2f}, {pgr['ci_high']:.2f}]"
