"""Figures like the paper's, drawn from a run's metrics and item rows (functions of data, no state).

* :func:`plot_overview` - Fig. 1: BBQ bias score (ambiguous), Winogender rho and the law-school gap,
  by condition; with several models the x-axis is the model and each condition is a series.
* :func:`plot_bbq_categories` - Fig. 3: the BBQ bias score per category.
* :func:`plot_winogender_scatter` - p(female pronoun) against the BLS share of women, per condition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from overseer.selfcorrect.prompts import LABELS

COLORS = {"q": "#1f77b4", "if": "#ff7f0e", "cot": "#2ca02c", "match": "#9467bd"}
PANELS = (
    ("bbq", "s_amb", "BBQ bias score (ambiguous)"),
    ("winogender", "rho", "Winogender ρ(p(female), BLS)"),
    ("law", "gap", "Law school: p(yes|Black) − p(yes|White)"),
)


def _figure(ncols: int, nrows: int = 1, width: float = 4.2, height: float = 3.4) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, axes


def _point(est: Mapping[str, Any] | None) -> tuple[float, float, float] | None:
    """(value, lower error, upper error) of an Estimate dict, or None when it has no value."""
    if not est or est.get("value") is None:
        return None
    value = float(est["value"])
    low = est.get("ci_low")
    high = est.get("ci_high")
    return value, value - float(low if low is not None else value), float(high if high is not None else value) - value


def _headline(block: Mapping[str, Any] | None, suite: str, key: str) -> Mapping[str, Any] | None:
    """The plotted Estimate dict of one suite/condition block (BBQ keeps it under ``overall``)."""
    if not block:
        return None
    return (block.get("overall") or {}).get(key) if suite == "bbq" else block.get(key)


def _series(ax: Any, xs: Sequence[float], points: Sequence[tuple[float, float, float] | None], **style: Any) -> None:
    kept = [(x, p) for x, p in zip(xs, points, strict=True) if p is not None]
    if not kept:
        return
    x, p = zip(*kept, strict=True)
    ax.errorbar(x, [v for v, _, _ in p], yerr=[[lo for _, lo, _ in p], [hi for _, _, hi in p]], capsize=3, **style)


def plot_overview(metrics: Mapping[str, Any], models: Sequence[str], conditions: Sequence[str]) -> Any:
    """Fig. 1 of the paper for the models and conditions of a run; returns the matplotlib Figure."""
    fig, axes = _figure(len(PANELS))
    for ax, (suite, key, title) in zip(axes[0], PANELS, strict=True):
        ax.set_title(title, fontsize=10)
        ax.axhline(0.0, color="grey", lw=0.8, ls=":")
        if len(models) == 1:
            per_cond = metrics.get(models[0], {}).get(suite, {})
            conds = [c for c in conditions if c in per_cond]
            for i, cond in enumerate(conds):
                _series(ax, [i], [_point(_headline(per_cond[cond], suite, key))], fmt="o", color=COLORS.get(cond), ms=7)
            ax.set_xticks(range(len(conds)), [LABELS[c] for c in conds], fontsize=8)
            ax.set_xlim(-0.5, max(len(conds) - 0.5, 0.5))
        else:
            for cond in conditions:
                points = [_point(_headline(metrics.get(m, {}).get(suite, {}).get(cond), suite, key)) for m in models]
                if any(points):
                    _series(ax, list(range(len(models))), points, fmt="o-", color=COLORS.get(cond), label=LABELS[cond])
            ax.set_xticks(range(len(models)), list(models), rotation=20, fontsize=8)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        if suite in ("bbq", "winogender"):
            ax.set_ylim(-1.05, 1.05)
        if not ax.has_data():
            ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes, color="grey")
    fig.tight_layout()
    return fig


def plot_bbq_categories(metrics: Mapping[str, Any], models: Sequence[str], conditions: Sequence[str]) -> Any:
    """Fig. 3: s_AMB per BBQ category (and overall), one marker per condition (and model)."""
    cats: list[str] = []
    for m in models:
        for cond in metrics.get(m, {}).get("bbq", {}).values():
            cats.extend(c for c in cond.get("by_category", {}) if c not in cats)
    panels = ["overall", *sorted(cats)]
    ncols = min(4, len(panels))
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = _figure(ncols, nrows, width=3.4, height=2.8)
    flat = [ax for row in axes for ax in row]
    for ax, panel in zip(flat, panels, strict=False):
        ax.set_title(panel.replace("_", " "), fontsize=9)
        ax.axhline(0.0, color="grey", lw=0.8, ls=":")
        for j, model in enumerate(models):
            per_cond = metrics.get(model, {}).get("bbq", {})
            for i, cond in enumerate(c for c in conditions if c in per_cond):
                block = per_cond[cond].get("overall", {}) if panel == "overall" else (
                    per_cond[cond].get("by_category", {}).get(panel, {})
                )
                x = j + (i - 1) * 0.2
                label = LABELS[cond] if j == 0 else None
                _series(ax, [x], [_point(block.get("s_amb"))], fmt="o", color=COLORS.get(cond), label=label)
        ax.set_xticks(range(len(models)), list(models), fontsize=7)
        ax.set_ylim(-1.05, 1.05)
    for ax in flat[len(panels) :]:
        ax.axis("off")
    if flat and flat[0].get_legend_handles_labels()[0]:
        flat[0].legend(fontsize=7)
    fig.supylabel("bias score s_AMB", fontsize=9)
    fig.tight_layout()
    return fig


def plot_winogender_scatter(rows: Sequence[Mapping[str, Any]], conditions: Sequence[str]) -> Any:
    """p(female pronoun) against the BLS share of women, one panel per condition (first model's rows)."""
    conds = [c for c in conditions if any(r.get("condition") == c for r in rows)] or list(conditions)
    fig, axes = _figure(len(conds), width=3.4, height=3.2)
    for ax, cond in zip(axes[0], conds, strict=True):
        xs = [r["bls_female"] for r in rows if r.get("condition") == cond and r.get("p_female") is not None]
        ys = [r["p_female"] for r in rows if r.get("condition") == cond and r.get("p_female") is not None]
        ax.scatter(xs, ys, s=12, color=COLORS.get(cond))
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(LABELS.get(cond, cond), fontsize=10)
        ax.set_xlabel("BLS share of women", fontsize=8)
    axes[0][0].set_ylabel("p(female pronoun)", fontsize=8)
    fig.tight_layout()
    return fig
