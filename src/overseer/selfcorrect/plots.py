"""Figures like the paper's, drawn from a run's metrics and item rows (functions of data, no state).

* :func:`plot_overview` - Fig. 1: BBQ bias score (ambiguous), Winogender rho and the law-school gap,
  by condition; with several models the x-axis is the model and each condition is a series.
* :func:`plot_bbq_categories` - Fig. 3: the BBQ bias score per category.
* :func:`plot_winogender_scatter` - p(female pronoun) against the BLS share of women, per condition.

Every figure names its model(s) and sample sizes, and says what its error bars are: 95% bootstrap
intervals over BBQ templates, Winogender occupations or law-school students (what each suite resamples).
Save them with :func:`overseer.results.plots.save_figure` (PNG at 300 dpi and PDF).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from overseer.results.plots import caption, legend_right, model_label
from overseer.selfcorrect.prompts import LABELS

COLORS = {"q": "#1f77b4", "if": "#ff7f0e", "cot": "#2ca02c", "match": "#9467bd"}
PANELS = (
    ("bbq", "s_amb", "BBQ bias score, ambiguous (s_AMB)"),
    ("winogender", "rho", "Winogender ρ(p(female), BLS share)"),
    ("law", "gap", "Law school: p(yes|Black) − p(yes|White)"),
)
RESAMPLED = {"bbq": "BBQ templates", "winogender": "Winogender occupations", "law": "law-school students"}
UNITS = {"bbq": "items", "winogender": "occupations", "law": "students"}
ZERO_MEANS = {"bbq": "no bias", "winogender": "no correlation", "law": "no gap"}
NAMES = {"bbq": "BBQ", "winogender": "Winogender", "law": "law school"}
_GREY = "#555555"


def _figure(ncols: int, nrows: int = 1, width: float = 4.2, height: float = 3.4, sharey: bool = False
            ) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, sharey=sharey)
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


def _offsets(n: int, step: float = 0.1) -> list[float]:
    """Horizontal offsets that set ``n`` series side by side around each x, so no interval hides another."""
    return [(i - (n - 1) / 2) * step for i in range(n)]


def _n_text(values: Sequence[int], unit: str) -> str:
    """``n=60 occupations``, or ``n=40–60 occupations`` when models or conditions differ."""
    values = sorted(set(values))
    if not values:
        return ""
    span = str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"
    return f"n={span} {unit[:-1] if values == [1] else unit}"


def suite_sizes(metrics: Mapping[str, Any], models: Sequence[str], suite: str) -> list[int]:
    """Items scored per model and condition in ``suite`` (BBQ counts under ``overall``)."""
    sizes = []
    for model in models:
        for block in metrics.get(model, {}).get(suite, {}).values():
            n = (block.get("overall") or {}).get("n_items") if suite == "bbq" else block.get("n_items")
            if n is not None:
                sizes.append(int(n))
    return sizes


def _models_title(models: Sequence[str]) -> str:
    names = [model_label(m) for m in models]
    return names[0] if len(names) == 1 else ", ".join(names)


def _shared_legend(fig: Any, axes: Sequence[Any]) -> None:
    """One legend right of the figure for the series of every panel (each label once)."""
    found: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            found.setdefault(label, handle)
    if found:
        legend_right(fig, list(found.values()), list(found))


def _drawn(ax: Any) -> bool:
    """Whether any estimate was drawn on ``ax`` (reference lines do not count)."""
    return bool(ax.containers)


def _zero_line(ax: Any) -> None:
    ax.axhline(0.0, color="grey", lw=0.8, ls=":", zorder=0)


def _plain_numbers(ax: Any) -> None:
    """Tick labels as plain numbers: no offset or ×1e-5 multiplier drawn over the title."""
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}" if abs(v) > 1e-12 else "0"))


def plot_overview(metrics: Mapping[str, Any], models: Sequence[str], conditions: Sequence[str]) -> Any:
    """Fig. 1 of the paper for the models and conditions of a run; returns the matplotlib Figure.

    One model: the x-axis is the condition. Several: the x-axis is the model, each condition a series
    (set side by side) and one legend right of the panels. Titles name the model(s) and each panel's n.
    """
    fig, axes = _figure(len(PANELS), width=4.0, height=3.3)
    drawn = []
    for ax, (suite, key, title) in zip(axes[0], PANELS, strict=True):
        n = _n_text(suite_sizes(metrics, models, suite), UNITS[suite])
        ax.set_title(f"{title}\n{n}" if n else title, fontsize=9)
        _zero_line(ax)
        if len(models) == 1:
            per_cond = metrics.get(models[0], {}).get(suite, {})
            conds = [c for c in conditions if c in per_cond]
            for i, cond in enumerate(conds):
                _series(ax, [i], [_point(_headline(per_cond[cond], suite, key))], fmt="o", color=COLORS.get(cond), ms=6)
            ax.set_xticks(range(len(conds)), [LABELS[c] for c in conds], fontsize=8)
            ax.set_xlim(-0.5, max(len(conds) - 0.5, 0.5))
        else:
            conds = [c for c in conditions if any(c in metrics.get(m, {}).get(suite, {}) for m in models)]
            for cond, dx in zip(conds, _offsets(len(conds)), strict=True):
                points = [_point(_headline(metrics.get(m, {}).get(suite, {}).get(cond), suite, key)) for m in models]
                if any(points):
                    _series(ax, [i + dx for i in range(len(models))], points, fmt="o-", color=COLORS.get(cond),
                            label=LABELS[cond], ms=5)
            ax.set_xticks(range(len(models)), [model_label(m) for m in models], rotation=20, ha="right", fontsize=8)
            ax.set_xlim(-0.5, len(models) - 0.5)
        if suite in ("bbq", "winogender"):
            ax.set_ylim(-1.05, 1.05)
        else:
            low, high = ax.get_ylim()
            ax.set_ylim(min(low, 0.0), max(high, 0.0))
            _plain_numbers(ax)
        ax.spines[["top", "right"]].set_visible(False)
        if _drawn(ax):
            drawn.append(suite)
        else:
            ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes, color="grey")
    if len(models) > 1:
        _shared_legend(fig, axes[0])
    fig.suptitle(f"Moral self-correction: {_models_title(models)}", fontsize=10)
    fig.tight_layout()
    over = ", ".join(RESAMPLED[s] for s in drawn) or "the items"
    zero = ", ".join(f"{ZERO_MEANS[s]} ({NAMES[s]})" for s in drawn)
    per = "model and condition" if len(models) > 1 else "condition"
    caption(fig, f"Error bars: 95% bootstrap intervals over {over}. Dotted lines at 0" + (f": {zero}" if zero else "")
            + f". n: items scored per {per}.")
    return fig


def plot_bbq_categories(metrics: Mapping[str, Any], models: Sequence[str], conditions: Sequence[str]) -> Any:
    """Fig. 3: s_AMB per BBQ category (and overall), one marker per condition (and model).

    One model: the x-axis is the condition. Several: the x-axis is the model, conditions set side by side,
    and one legend right of the panels. A panel whose score is undefined (no ambiguous item answered other
    than UNKNOWN) says so.
    """
    cats: list[str] = []
    for m in models:
        for cond in metrics.get(m, {}).get("bbq", {}).values():
            cats.extend(c for c in cond.get("by_category", {}) if c not in cats)
    panels = ["overall", *sorted(cats)]
    conds = [c for c in conditions if any(c in metrics.get(m, {}).get("bbq", {}) for m in models)]
    ncols = min(4, len(panels))
    nrows = (len(panels) + ncols - 1) // ncols
    width = 3.0 if len(models) == 1 else max(3.0, 1.0 * len(models) + 0.6)
    fig, axes = _figure(ncols, nrows, width=width, height=2.7, sharey=True)
    flat = [ax for row in axes for ax in row]
    for ax, panel in zip(flat, panels, strict=False):
        sizes = []
        for j, model in enumerate(models):
            per_cond = metrics.get(model, {}).get("bbq", {})
            for i, (cond, dx) in enumerate(zip(conds, _offsets(len(conds), 0.15), strict=True)):
                if cond not in per_cond:
                    continue
                block = per_cond[cond].get("overall", {}) if panel == "overall" else (
                    per_cond[cond].get("by_category", {}).get(panel, {})
                )
                if block.get("n_items") is not None:
                    sizes.append(int(block["n_items"]))
                x = i if len(models) == 1 else j + dx
                _series(ax, [x], [_point(block.get("s_amb"))], fmt="o", color=COLORS.get(cond), ms=5,
                        label=LABELS[cond])
        n = _n_text(sizes, "items")
        ax.set_title(panel.replace("_", " ") + (f" ({n})" if n else ""), fontsize=8.5)
        _zero_line(ax)
        if len(models) == 1:
            ax.set_xticks(range(len(conds)), [LABELS[c] for c in conds], fontsize=7)
            ax.set_xlim(-0.5, max(len(conds) - 0.5, 0.5))
        else:
            ax.set_xticks(range(len(models)), [model_label(m) for m in models], rotation=20, ha="right", fontsize=7)
            ax.set_xlim(-0.5, len(models) - 0.5)
        ax.set_ylim(-1.05, 1.05)
        ax.tick_params(axis="y", labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
        if not _drawn(ax):
            ax.text(0.5, 0.75, "s_AMB undefined: no ambiguous\nitem with a non-UNKNOWN answer", ha="center",
                    va="center", transform=ax.transAxes, fontsize=7, color=_GREY)
    for ax in flat[len(panels) :]:
        ax.axis("off")
    if len(models) > 1:
        _shared_legend(fig, flat)
    for row in axes:
        row[0].set_ylabel("s_AMB", fontsize=8)
    fig.suptitle(f"BBQ bias score in ambiguous contexts by category: {_models_title(models)}", fontsize=10)
    fig.tight_layout()
    caption(fig, "Error bars: 95% bootstrap intervals over BBQ templates. Dotted line at 0: no bias "
                 "(+1: always the biased answer, −1: always the anti-biased one); n: items scored per "
                 + ("model and condition." if len(models) > 1 else "condition."))
    return fig


def plot_winogender_scatter(rows: Sequence[Mapping[str, Any]], conditions: Sequence[str], model: str | None = None,
                            metrics: Mapping[str, Any] | None = None) -> Any:
    """p(female pronoun) against the BLS share of women, one panel per condition (one model's rows).

    Args:
        rows: the model's Winogender item rows (``condition``, ``bls_female``, ``p_female``).
        conditions: the run's conditions, in order.
        model: the model's name, for the title.
        metrics: the model's Winogender metrics by condition; each panel's title then gives ρ with its
            95% interval over occupations (without it, ρ of the plotted points alone).
    """
    conds = [c for c in conditions if any(r.get("condition") == c for r in rows)] or list(conditions)
    fig, axes = _figure(len(conds), width=2.9, height=3.1, sharey=True)
    sizes = []
    for ax, cond in zip(axes[0], conds, strict=True):
        kept = [r for r in rows if r.get("condition") == cond and r.get("p_female") is not None]
        xs = np.array([r["bls_female"] for r in kept], dtype=float)
        ys = np.array([r["p_female"] for r in kept], dtype=float)
        sizes.append(len(kept))
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":", zorder=0)
        ax.scatter(xs, ys, s=12, color=COLORS.get(cond), alpha=0.8, zorder=2)
        rho = _point(((metrics or {}).get(cond) or {}).get("rho"))
        if rho is not None:
            value, lo, hi = rho
            label = f"ρ = {value:.2f} [{value - lo:.2f}, {value + hi:.2f}]"
        elif len(kept) > 2 and np.std(xs) > 0 and np.std(ys) > 0:
            label = f"ρ = {float(np.corrcoef(xs, ys)[0, 1]):.2f}"
        else:
            label = "ρ undefined"
        ax.set_title(f"{LABELS.get(cond, cond)}\n{label}", fontsize=9)
        ax.set_xlim(-0.03, 1.03)  # points at 0 and 1 stay whole
        ax.set_ylim(-0.03, 1.03)
        ax.set_aspect("equal")
        ax.set_xlabel("BLS share of women", fontsize=8)
        ax.tick_params(labelsize=7)
        if not kept:
            ax.text(0.5, 0.5, "no scored occupation", ha="center", va="center", transform=ax.transAxes,
                    fontsize=7, color=_GREY)
    axes[0][0].set_ylabel("p(female pronoun)", fontsize=8)
    who = f"{model_label(model)}, " if model else ""
    fig.suptitle(f"Winogender: {who}{_n_text(sizes, 'occupations')}", fontsize=10)
    fig.tight_layout()
    caption(fig, "Each dot is one occupation; dotted: p(female) equal to the BLS share. ρ: Pearson correlation "
                 "with its 95% bootstrap interval over occupations.")
    return fig
