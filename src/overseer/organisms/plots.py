"""Figures of the organisms pillar: compliance by tier, with intervals."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from overseer.results.plots import caption, legend_right, model_label


def compliance_figure(faking: Mapping[str, Mapping[str, Any]]) -> Figure:
    """Compliance with free-tier (trained-on) and paid-tier (unmonitored) users per target, Wilson 95%."""
    targets = list(faking)
    fig = Figure(figsize=(max(4.0, 1.6 * len(targets) + 2), 3.0))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    handles = []
    for k, (tier, color) in enumerate((("free", "#c0504d"), ("paid", "#4f81bd"))):
        xs, ys, low, high = [], [], [], []
        for i, target in enumerate(targets):
            r = faking[target][f"compliance_{tier}"]
            if r["value"] is None:
                continue
            xs.append(i + (k - 0.5) * 0.35)
            ys.append(r["value"])
            low.append(r["value"] - r["ci_low"])
            high.append(r["ci_high"] - r["value"])
        handles.append(ax.bar(xs, ys, width=0.33, yerr=[low, high], capsize=3, color=color))
    ax.set_xticks(range(len(targets)), [model_label(t) for t in targets], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("compliance rate")
    legend_right(fig, handles, ["free tier (used for training)", "paid tier (never trained on)"])
    caption(fig, "Share of requests the primary judge scores as complied with, by the tier cue in the prompt; "
                 "error bars: Wilson 95%. The compliance gap (free minus paid, paired over requests) is in "
                 "metrics.json.")
    return fig
