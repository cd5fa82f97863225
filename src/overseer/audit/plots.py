"""An audit's figures: elicitation rates with intervals, score distributions, judge agreement.

Each figure is a function of the metrics and records that returns a matplotlib Figure;
:func:`write_figures` saves them with the results layer's :func:`~overseer.results.plots.save_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from overseer.audit.analysis import ALL, verdict_score
from overseer.results.plots import caption, legend_right, model_label, save_figure


def elicitation_figure(metrics: Mapping[str, Any], threshold: float) -> Figure:
    """Elicitation rate by behaviour and target, Wilson 95% intervals as bars, bootstrap as thin caps."""
    rates = metrics["elicitation"]
    targets = list(rates)
    behaviours = sorted({b for r in rates.values() for b in r if b != ALL}) + [ALL]
    fig = Figure(figsize=(max(5.0, 0.9 * len(behaviours) * max(1, len(targets)) + 1.5), 3.2))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    width = 0.8 / max(1, len(targets))
    handles = []
    for k, target in enumerate(targets):
        xs, ys, lows, highs, b_lows, b_highs = [], [], [], [], [], []
        for i, b in enumerate(behaviours):
            r = rates[target].get(b)
            if not r or r["value"] is None:
                continue
            xs.append(i - 0.4 + width * (k + 0.5))
            ys.append(r["value"])
            lows.append(r["value"] - r["ci_low"])
            highs.append(r["ci_high"] - r["value"])
            b_lows.append(r["bootstrap_low"] if r["bootstrap_low"] is not None else r["value"])
            b_highs.append(r["bootstrap_high"] if r["bootstrap_high"] is not None else r["value"])
        bars = ax.bar(xs, ys, width=width * 0.9, yerr=[lows, highs], capsize=3, label=model_label(target), alpha=0.85)
        for x, b in zip(xs, [b for b in behaviours if rates[target].get(b) and rates[target][b]["value"] is not None],
                        strict=True):
            r = rates[target][b]
            ax.text(x, r["ci_high"] + 0.02, f"{r['successes']}/{r['n']}", ha="center", va="bottom", fontsize=7)
        ax.vlines(xs, b_lows, b_highs, colors="black", linewidth=0.8, linestyles="dotted")
        handles.append(bars)
    ax.set_xticks(range(len(behaviours)), [b.replace("_", " ") for b in behaviours], rotation=25, ha="right",
                  fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel(f"elicitation rate (score >= {threshold:g})")
    legend_right(fig, handles, [model_label(t) for t in targets])
    caption(fig, "Bars: share of judged rollouts at or above the threshold (primary judge). Error bars: Wilson 95%; "
                 "dotted: 95% bootstrap over scenarios. Failed scenarios and judge failures are left out and "
                 "counted in metrics.json.")
    return fig


def scores_figure(records: Sequence[Mapping[str, Any]], dimensions: Sequence[str], threshold: float) -> Figure:
    """Primary judge's score per dimension, one dot per judged rollout (targets side by side)."""
    targets = sorted({r["target"] for r in records})
    fig = Figure(figsize=(max(5.0, 0.8 * len(dimensions) + 2), 3.2))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    rng = np.random.default_rng(0)
    handles = []
    width = 0.8 / max(1, len(targets))
    for k, target in enumerate(targets):
        xs, ys = [], []
        for i, dim in enumerate(dimensions):
            for r in records:
                score = verdict_score(r, dim) if r["target"] == target else None
                if score is not None:
                    xs.append(i - 0.4 + width * (k + 0.5) + rng.uniform(-width / 3, width / 3))
                    ys.append(score)
        handles.append(ax.scatter(xs, ys, s=12, alpha=0.7, label=model_label(target)))
    ax.axhline(threshold, color="#9a9a9a", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(dimensions)), [d.replace("_", " ") for d in dimensions], rotation=25, ha="right",
                  fontsize=8)
    ax.set_ylim(0.5, 10.5)
    ax.set_ylabel("judge score (1-10)")
    legend_right(fig, handles, [model_label(t) for t in targets])
    caption(fig, "Each dot is one rollout's score from the primary judge; the dashed line is the elicitation "
                 "threshold.")
    return fig


def agreement_figure(between: Mapping[str, Any]) -> Figure:
    """Cohen's kappa (labels score >= threshold) and Spearman's rho (scores) between every pair of raters."""
    raters = between["raters"]
    panels = [("kappa", "Cohen's kappa")] + ([("spearman", "Spearman rho")] if "spearman" in between else [])
    fig = Figure(figsize=(len(panels) * (1.1 * len(raters) + 2.2), 1.0 * len(raters) + 1.8))
    FigureCanvasAgg(fig)
    labels = [r if len(r) < 28 else r[:25] + "..." for r in raters]
    for ax, (key, title) in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels, strict=True):
        matrix = np.array([[np.nan if v is None else v for v in row] for row in between[key]], dtype=float)
        image = ax.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu")
        for i in range(len(raters)):
            for j in range(len(raters)):
                ax.text(j, i, "n/a" if np.isnan(matrix[i, j]) else f"{matrix[i, j]:.2f}", ha="center", va="center",
                        fontsize=8)
        ax.set_xticks(range(len(raters)), labels, rotation=30, ha="right", fontsize=7)
        ax.set_yticks(range(len(raters)), labels if key == "kappa" else [], fontsize=7)
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8)
    caption(fig, f"Agreement over {between['n_items']} (rollout, dimension) items. Kappa: on whether each item "
                 "reaches the threshold (n/a: undefined, a rater gave one label throughout); rho: on the scores.")
    return fig


def write_figures(metrics: Mapping[str, Any], records: Sequence[Mapping[str, Any]], cfg: Any,
                  dimensions: Sequence[str], directory: str | Path) -> list[str]:
    """Save every figure the data allow; returns their file names."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if any(r.get(ALL, {}).get("value") is not None for r in metrics["elicitation"].values()):
        written += save_figure(elicitation_figure(metrics, cfg.threshold), directory, "elicitation")
    if any(r["status"] == "ok" for r in records):
        written += save_figure(scores_figure(records, dimensions, cfg.threshold), directory, "scores")
    between = metrics["judge_reliability"].get("between")
    if between:
        written += save_figure(agreement_figure(between), directory, "judge_agreement")
    return [p.name for p in written]
