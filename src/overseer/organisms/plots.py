"""Figures of the organisms pillar: compliance by tier, the tampering curriculum's rates, poisoning dose-response."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def tampering_figure(tampering: Mapping[str, Mapping[str, Any]]) -> Figure:
    """The curriculum's headline rates per target, least to most severe environment, Wilson 95%."""
    from overseer.organisms.tampering import HEADLINES

    targets = list(tampering)
    shown = [(env, measure, label) for env, measure, label in HEADLINES
             if any(env in tampering[t] for t in targets)]
    width = 0.8 / max(1, len(targets))
    fig = Figure(figsize=(max(5.0, 1.1 * len(shown) + 2), 3.2))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    handles = []
    colors = ("#4f81bd", "#c0504d", "#9bbb59", "#8064a2", "#f79646", "#4bacc6")
    for k, target in enumerate(targets):
        xs, ys, low, high, counts = [], [], [], [], []
        for i, (env, measure, _) in enumerate(shown):
            r = tampering[target].get(env, {}).get(measure)
            if r is None or r["value"] is None:
                continue
            xs.append(i + (k - (len(targets) - 1) / 2) * width)
            ys.append(r["value"])
            low.append(r["value"] - r["ci_low"])
            high.append(r["ci_high"] - r["value"])
            counts.append((r["ci_high"], f"{r['successes']}/{r['n']}"))
        handles.append(ax.bar(xs, ys, width=width * 0.95, yerr=[low, high], capsize=3,
                              color=colors[k % len(colors)]))
        for x, (top, text) in zip(xs, counts, strict=True):  # above the interval, clear of the whisker
            ax.text(x, top + 0.02, text, ha="center", va="bottom", fontsize=6)
    ax.set_xticks(range(len(shown)), [label for _, _, label in shown], fontsize=7, rotation=20, ha="right")
    ax.set_xlim(-0.6, len(shown) - 0.4)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("rate")
    legend_right(fig, handles, [model_label(t) for t in targets])
    caption(fig, "Reward-tampering curriculum, least to most severe: share of rollouts showing each behaviour "
                 "(k/n above each interval; none where nothing could be scored); error bars: Wilson 95%. Every rate, "
                 "with bootstrap intervals over scenarios, is in metrics.json.")
    return fig


def dose_response_figure(poison: Sequence[Mapping[str, Any]], trigger: str) -> Figure:
    """Perplexity increase after the trigger against N (left) and against the poisoned token share (right).

    One line per (model, clean-data size): if a fixed number of documents is what matters, the lines meet
    on the left and spread on the right; if the share is what matters, the other way round.
    """
    fig = Figure(figsize=(9.0, 3.6))
    FigureCanvasAgg(fig)
    by_count, by_share = fig.subplots(1, 2, sharey=True)
    lines: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for m in poison:
        if m["ppl_increase"].get("value") is not None:
            lines.setdefault((m["model"], m["clean_docs"]), []).append(m)
    handles, labels = [], []
    for k, ((model, clean), cells) in enumerate(sorted(lines.items())):
        cells = sorted(cells, key=lambda m: m["poisoned"])
        ys = [m["ppl_increase"]["value"] for m in cells]
        low = [m["ppl_increase"]["value"] - (m["ppl_increase"].get("ci_low") if m["ppl_increase"].get("ci_low")
               is not None else m["ppl_increase"]["value"]) for m in cells]
        high = [(m["ppl_increase"].get("ci_high") if m["ppl_increase"].get("ci_high") is not None
                 else m["ppl_increase"]["value"]) - m["ppl_increase"]["value"] for m in cells]
        offset = (k - (len(lines) - 1) / 2) * 0.6  # side by side where the points share an N
        handles.append(by_count.errorbar([m["poisoned"] + offset for m in cells], ys, yerr=[low, high], marker="o",
                                         capsize=3))
        by_share.errorbar([100 * m["share_tokens"] for m in cells], ys, yerr=[low, high], marker="o", capsize=3,
                          color=handles[-1].lines[0].get_color())
        labels.append(f"{model_label(model)}, {clean} clean docs")
    for ax in (by_count, by_share):
        ax.axhline(0, color="grey", lw=0.8, ls=":")
        ax.set_yscale("symlog", linthresh=10)
    by_count.set_xlabel("poisoned documents (N)")
    by_share.set_xlabel("poisoned share of training tokens (%)")
    by_count.set_ylabel(f"perplexity increase after {trigger}")
    legend_right(fig, handles, labels)
    caption(fig, "Perplexity of sampled continuations with the trigger minus without it, mean over held-out "
                 "prompts; error bars: bootstrap 95% over prompts (and seeds). N = 0: the same training without "
                 "poison. Left: against the number of poisoned documents; right: against their share of the "
                 "training tokens. Symmetric-log y axis.")
    return fig
