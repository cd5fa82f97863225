"""Plots of weak-to-strong runs, as functions of metrics (no global state, returns a Figure)."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from overseer.results.plots import CHANCE_COLOR, caption  # noqa: E402

COLORS = {"weak": "#8c8c8c", "student": "#3a78c2", "ceiling": "#2b2b2b"}
CHANCE = 0.5
"""Chance accuracy of every weak-to-strong task: each is a binary, class-balanced classification."""


def interval_text(n_test: int | None = None, n_seeds: int = 1) -> str:
    """What a run's error bars are: 95% bootstrap intervals over its test examples (and seeds)."""
    over = f"{n_test} test examples" if n_test else "test examples"
    if n_seeds > 1:
        return f"95% bootstrap intervals over {n_seeds} seeds × {over} (seeds resampled, then examples)"
    return f"95% bootstrap intervals over {over}"


def plot_accuracies(metrics: dict[str, Any], title: str = "", n_test: int | None = None, n_seeds: int = 1) -> Figure:
    """Weak, student and ceiling test accuracy as bars up from chance (0.5), with 95% intervals, and PGR.

    Args:
        metrics: the run's ``metrics`` section (``weak``/``student``/``ceiling`` accuracy, ``pgr``).
        title: first title line (the run: dataset, models, method).
        n_test: test examples per seed, named in the caption.
        n_seeds: seeds pooled into the intervals.
    """
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    roles = ["weak", "student", "ceiling"]
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
    ax.set_xlim(-0.55, 2.55)
    ax.set_ylabel("test accuracy")
    pgr = metrics["pgr"]["accuracy"]
    if pgr["value"] is None:
        pgr_text = "PGR undefined (the ceiling does not beat the weak model)"
    elif pgr.get("ci_low") is None or pgr.get("ci_high") is None:
        pgr_text = f"PGR {pgr['value']:.2f}"
    else:
        pgr_text = f"PGR {pgr['value']:.2f} [95% CI {pgr['ci_low']:.2f}, {pgr['ci_high']:.2f}]"
    ax.set_title(f"{title}\n{pgr_text}" if title else pgr_text, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    caption(fig, f"Error bars: {interval_text(n_test, n_seeds)}. Dashed line: chance (0.5). "
                 "PGR = (student − weak) / (ceiling − weak), its interval from the same resamples.")
    return fig
