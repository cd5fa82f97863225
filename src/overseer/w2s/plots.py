"""Plots of weak-to-strong runs, as functions of metrics (no global state, returns a Figure)."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

COLORS = {"weak": "#8c8c8c", "student": "#3a78c2", "ceiling": "#2b2b2b"}


def plot_accuracies(metrics: dict[str, Any], title: str = "") -> Figure:
    """Bar chart of weak, student and ceiling test accuracy with 95% intervals and PGR."""
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    roles = ["weak", "student", "ceiling"]
    values = [metrics[r]["accuracy"]["value"] for r in roles]
    lows = [metrics[r]["accuracy"]["ci_low"] for r in roles]
    highs = [metrics[r]["accuracy"]["ci_high"] for r in roles]
    errors = [
        [v - lo if lo is not None else 0 for v, lo in zip(values, lows, strict=True)],
        [hi - v if hi is not None else 0 for v, hi in zip(values, highs, strict=True)],
    ]
    ax.bar(roles, values, yerr=errors, capsize=6, color=[COLORS[r] for r in roles])
    for i, (v, hi) in enumerate(zip(values, highs, strict=True)):
        ax.text(i, (hi if hi is not None else v) + 0.01, f"{v:.3f}", ha="center", va="bottom", fontsize=9)
    floor = max(0.0, min(lo for lo in lows if lo is not None) - 0.05) if any(lo is not None for lo in lows) else 0.0
    ax.set_ylim(min(0.5, floor), 1.0)
    ax.set_ylabel("test accuracy")
    pgr = metrics["pgr"]["accuracy"]
    pgr_text = (
        "PGR undefined" if pgr["value"] is None
        else f"PGR {pgr['value']:.2f} [{pgr['ci_low']:.2f}, {pgr['ci_high']:.2f}]"
    )
    ax.set_title(f"{title}\n{pgr_text}" if title else pgr_text, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig
