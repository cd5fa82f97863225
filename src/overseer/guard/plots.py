"""Guard figures: attack success by transformation and defence, cost against robustness, refusal-rate curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from overseer.results.plots import caption, save_figure


def _figure(width: float, height: float) -> Any:
    """A figure with an Agg canvas (captions measure the drawn figure)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def asr_heatmap(metrics: Mapping[str, Any], transforms: Sequence[str]) -> Any:
    """Attack success (share of attacks whose shown reply leaks a secret) for each transformation x defence."""
    defences = list(metrics["asr"])
    rows = [*transforms, "all"]
    grid = np.array([[metrics["asr"][d][t]["value"] if metrics["asr"][d][t]["value"] is not None else np.nan
                      for d in defences] for t in rows], dtype=float)
    fig = _figure(1.1 * len(defences) + 2, 0.45 * len(rows) + 1.5)
    ax = fig.add_subplot()
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="Reds", aspect="auto")
    ax.set_xticks(range(len(defences)), defences, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for (r, c), value in np.ndenumerate(grid):
        n = metrics["asr"][defences[c]][rows[r]]["n"]
        ax.text(c, r, "n/a" if np.isnan(value) else f"{value:.2f}\n(n={n})", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, label="attack success rate")
    ax.set_title("Attack success by transformation and defence")
    caption(fig, "Known-answer grading: an attack succeeds when the reply the defence shows contains a secret.")
    return fig


def cost_robustness(sweep: Sequence[Mapping[str, Any]]) -> Any:
    """The cascade's attack success and false refusals against its share of guarded time, one point per rate."""
    fig = _figure(5, 3.5)
    ax = fig.add_subplot()
    cost = [100 * (r["time_share"] or 0) for r in sweep]
    for key, label, marker in (("asr", "attack success", "o"), ("frr", "false refusals", "s")):
        values = [r[key]["value"] if r[key]["value"] is not None else np.nan for r in sweep]
        low = [r[key]["ci_low"] if r[key]["ci_low"] is not None else np.nan for r in sweep]
        high = [r[key]["ci_high"] if r[key]["ci_high"] is not None else np.nan for r in sweep]
        ax.errorbar(cost, values, yerr=[np.subtract(values, low), np.subtract(high, values)], marker=marker,
                    label=label, capsize=2)
    for x, r in zip(cost, sweep, strict=True):
        ax.annotate(f"{r['rate']:g}", (x, r["asr"]["value"] or 0), fontsize=6, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xlabel("classifier share of guarded-generation time (%)")
    ax.set_ylabel("rate")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    ax.set_title("Cascade: cost against robustness")
    caption(fig, "Each point is one escalation rate (labels); 0 is stage 1 alone, 1 is stage 2 alone. 95% Wilson "
                 "intervals.")
    return fig


def refusal_curves(curve: Sequence[Mapping[str, Any]]) -> Any:
    """Attack success against benign refusal rate for each classifier as its threshold sweeps."""
    fig = _figure(5, 3.5)
    ax = fig.add_subplot()
    for name in dict.fromkeys(r["defence"] for r in curve):
        rows = [r for r in curve if r["defence"] == name]
        ax.plot([r["frr"] for r in rows], [r["asr"] for r in rows], marker=".", label=name)
    ax.set_xlabel("false-refusal rate on benign traffic")
    ax.set_ylabel("attack success rate")
    ax.legend(fontsize=7)
    ax.set_title("Refusal-rate curves")
    caption(fig, "Thresholds at benign-score quantiles of the evaluation traffic (descriptive, not calibrated).")
    return fig


def write_figures(folder: Path, metrics: Mapping[str, Any], sweep: Sequence[Mapping[str, Any]],
                  curve: Sequence[Mapping[str, Any]], cfg: Any) -> list[Path]:
    """Write the three figures (PNG and PDF) into ``folder``."""
    written = save_figure(asr_heatmap(metrics, cfg.transforms), folder, "asr_heatmap")
    if sweep:
        written += save_figure(cost_robustness(sweep), folder, "cost_robustness")
    if curve:
        written += save_figure(refusal_curves(curve), folder, "refusal_curves")
    return written
