"""The paper's views of many weak-to-strong runs: accuracy against strong-model size, PGR by method, a table.

Input is any mix of run directories, sweep directories (``sweep-<name>/``) and runs directories.
Everything is computed from what the runs wrote (read back with :func:`overseer.results.read_run`); plots are
functions of DataFrames that return a matplotlib Figure, so notebooks can call them too.
Across seeds and pairs, PGR is summarised by its median with a 95% bootstrap interval that
resamples pairs, then seeds within each pair.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from overseer.errors import OverseerError
from overseer.results import Estimate, estimate, is_finished, pgr, read_run
from overseer.results.plots import CHANCE_COLOR, caption, legend_right, model_label, save_figure
from overseer.w2s.metrics import ROLES
from overseer.w2s.plots import CHANCE, COLORS, interval_text, plt


# --- loading ---------------------------------------------------------------------------------
def find_runs(paths: Iterable[str | Path]) -> tuple[list[Path], list[str] | None]:
    """Finished w2s run directories under ``paths``, and the ladder order if a sweep names one."""
    runs: list[Path] = []
    ladder: list[str] | None = None
    for raw in paths:
        path = Path(raw)
        if is_finished(path):
            runs.append(path)
        elif (path / "sweep.json").is_file():
            record = json.loads((path / "sweep.json").read_text())
            ladder = ladder or list(record.get("full_config", record["config"]).get("ladder", [])) or None
            summary = path / "summary.json"
            names = json.loads(summary.read_text())["runs"] if summary.is_file() else []
            runs.extend(path.parent / n for n in names if is_finished(path.parent / n))
        elif path.is_dir():
            runs.extend(sorted(p for p in path.iterdir() if p.name.startswith("w2s-") and is_finished(p)))
        else:
            raise OverseerError(f"{str(path)!r} is not a run, sweep or runs directory")
    unique = list(dict.fromkeys(p.resolve() for p in runs))
    if not unique:
        raise OverseerError(f"no finished w2s runs under {', '.join(map(str, paths))}; run `overseer w2s sweep` first")
    return unique, ladder


def _method_label(cfg: dict[str, Any]) -> str:
    args = ", ".join(f"{k}={v}" for k, v in sorted((cfg.get("method_args") or {}).items()))
    return f"{cfg['method']}({args})" if args else cfg["method"]


def load_runs(runs: Sequence[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two tables: one row per run (pooled estimates with intervals), one per (run, seed)."""
    rows, seed_rows = [], []
    for path in runs:
        run = read_run(path)
        if run.pillar != "w2s":
            continue
        cfg, metrics = run.config, run.metrics
        base = {"run": path.name, "dataset": cfg["dataset"], "weak": cfg["weak"], "strong": cfg["strong"],
                "method": _method_label(cfg)}
        row: dict[str, Any] = {**base, "seeds": run.record.get("n_seeds", 1), "n_test": run.record.get("n_test")}
        for role in ROLES:  # runs from before the noise-matched baseline have no baseline: NaN
            acc = metrics.get(role, {}).get("accuracy", {})
            row |= {f"{role}_acc": acc.get("value"), f"{role}_lo": acc.get("ci_low"), f"{role}_hi": acc.get("ci_high")}
        for name in ("pgr", "baseline_pgr"):
            p = metrics.get(name, {}).get("accuracy", {})
            row |= {name: p.get("value"), f"{name}_lo": p.get("ci_low"), f"{name}_hi": p.get("ci_high")}
        rows.append(row)
        for seed, accs in run.record["per_seed"].items():
            value, _ = pgr(accs["weak"], accs["student"], accs["ceiling"])
            matched = pgr(accs["weak"], accs["baseline"], accs["ceiling"])[0] if "baseline" in accs else None
            seed_rows.append({**base, "seed": int(seed), **{f"{r}_acc": accs.get(r) for r in ROLES}, "pgr": value,
                              "baseline_pgr": matched})
    if not rows:
        raise OverseerError("none of the given runs is a weak-to-strong run")
    return pd.DataFrame(rows), pd.DataFrame(seed_rows)


def ladder_order(pairs: pd.DataFrame, ladder: Sequence[str] | None = None) -> list[str]:
    """Models weakest first: the sweep's ladder if known, else by how many models sit below each."""
    models = list(dict.fromkeys([*pairs["weak"], *pairs["strong"]]))
    if ladder:
        known = [m for m in ladder if m in models]
        return known + [m for m in models if m not in known]
    below: dict[str, set[str]] = {m: set() for m in models}
    for _ in models:  # transitive closure of "weak is below strong", at most len(models) rounds
        for w, s in zip(pairs["weak"], pairs["strong"], strict=True):
            below[s] |= {w} | below[w]
    return sorted(models, key=lambda m: (len(below[m]), m))


# --- summaries -------------------------------------------------------------------------------
def median_interval(values: np.ndarray, groups: np.ndarray, n_resamples: int = 1000) -> tuple[float, Any, Any]:
    """Median of ``values`` and its 95% interval, resampling groups (pairs) then members (seeds)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return float(values[0]), None, None
    est = estimate(lambda idx: float(np.median(values[idx])), len(values),
                   groups=groups if len(set(groups)) > 1 else None, n_resamples=n_resamples, seed=0)
    return float(np.median(values)), est.ci_low, est.ci_high


def summarize(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, method): median PGR (student and noise-matched baseline) and accuracies, with intervals."""
    out = []
    for (dataset, method), g in per_seed.groupby(["dataset", "method"], sort=True):
        defined = g[g["pgr"].notna()]
        row: dict[str, Any] = {"dataset": dataset, "method": method,
                               "pairs": g[["weak", "strong"]].drop_duplicates().shape[0],
                               "values": len(defined), "undefined": int(g["pgr"].isna().sum())}
        for name in ("pgr", "baseline_pgr"):
            values = g[g[name].notna()] if name in g else g.iloc[:0]
            if len(values):
                pair = (values["weak"] + " -> " + values["strong"]).to_numpy()
                row[name], row[f"{name}_lo"], row[f"{name}_hi"] = median_interval(values[name].to_numpy(float), pair)
            else:
                row[name] = row[f"{name}_lo"] = row[f"{name}_hi"] = None
        row["student_acc"] = float(g["student_acc"].median())
        baseline = g["baseline_acc"].dropna() if "baseline_acc" in g else pd.Series(dtype=float)
        row["baseline_acc"] = float(baseline.median()) if len(baseline) else None
        out.append(row)
    return pd.DataFrame(out)


# --- plots -----------------------------------------------------------------------------------
def _interval_note(pairs: pd.DataFrame) -> str:
    """What the per-run error bars are, with the runs' test size and seeds when they agree."""
    n_test = pairs["n_test"].dropna().unique() if "n_test" in pairs else []
    seeds = pairs["seeds"].dropna().unique() if "seeds" in pairs else []
    return interval_text(int(n_test[0]) if len(n_test) == 1 else None, int(seeds[0]) if len(seeds) == 1 else 1)


def plot_accuracy_vs_strong(pairs: pd.DataFrame, order: Sequence[str], title: str = "") -> Figure:
    """Test accuracy against strong-model size (ladder order), one panel per method.

    Each weak model is one colour: markers joined by a line for its students' accuracy over the strong
    models above it, and a dashed line at its own accuracy. Black squares are the ceiling (the strong
    model trained on ground truth); the grey dotted line is chance. Error bars are each run's 95%
    bootstrap interval over test examples (and seeds); students of different weak models at one
    strong model are drawn slightly apart so their intervals stay visible.
    """
    methods = sorted(pairs["method"].unique())
    strongs = [m for m in order if m in set(pairs["strong"])]  # only models that are someone's student
    weaks = [m for m in order if m in set(pairs["weak"])]
    fig, axes = plt.subplots(1, len(methods), figsize=(max(3.2, 0.9 * len(strongs) + 1.4) * len(methods), 3.4),
                             sharey=True, squeeze=False)
    x_of = {m: i for i, m in enumerate(strongs)}
    cmap = plt.get_cmap("viridis")
    color = {w: cmap(i / max(1, len(weaks) - 1) * 0.85) for i, w in enumerate(weaks)}
    # Side by side at each strong model: the students of each weak model, then the ceiling.
    slots = [*weaks, "ceiling"]
    shift = {w: (i - (len(slots) - 1) / 2) * min(0.12, 0.6 / len(slots)) for i, w in enumerate(slots)}
    lows, highs = [CHANCE], [CHANCE]
    for ax, method in zip(axes[0], methods, strict=True):
        g = pairs[pairs["method"] == method]
        ceiling = g.groupby("strong")[["ceiling_acc", "ceiling_lo", "ceiling_hi"]].median()
        ceiling = ceiling.reindex([m for m in strongs if m in ceiling.index])
        c_lo = ceiling["ceiling_lo"].fillna(ceiling["ceiling_acc"])
        c_hi = ceiling["ceiling_hi"].fillna(ceiling["ceiling_acc"])
        ax.errorbar([x_of[m] + shift["ceiling"] for m in ceiling.index], ceiling["ceiling_acc"],
                    yerr=[ceiling["ceiling_acc"] - c_lo, c_hi - ceiling["ceiling_acc"]], fmt="-s",
                    color=COLORS["ceiling"], capsize=3, ms=5, zorder=3)
        lows.append(float(c_lo.min()))
        highs.append(float(c_hi.max()))
        for weak in weaks:
            rows = g[g["weak"] == weak].assign(x=lambda d: d["strong"].map(x_of)).sort_values("x")
            if rows.empty:
                continue
            lo = rows["student_lo"].fillna(rows["student_acc"])
            hi = rows["student_hi"].fillna(rows["student_acc"])
            ax.errorbar(rows["x"] + shift[weak], rows["student_acc"], yerr=[rows["student_acc"] - lo,
                        hi - rows["student_acc"]], fmt="-o", color=color[weak], capsize=3, ms=5, zorder=4)
            ax.axhline(float(rows["weak_acc"].median()), color=color[weak], ls="--", lw=1, zorder=2)
            lows.append(float(lo.min()))
            highs.append(float(hi.max()))
        ax.axhline(CHANCE, color=CHANCE_COLOR, ls=":", lw=1, zorder=1)
        ax.set_xticks(range(len(strongs)), [model_label(m) for m in strongs], rotation=30, ha="right", fontsize=8)
        ax.set_xlim(-0.5, len(strongs) - 0.5)
        ax.set_xlabel("strong model (ladder order)", fontsize=8)
        ax.set_title(method, fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
    low = min(lows)
    axes[0][0].set_ylim(CHANCE - 0.01 if low >= CHANCE else low - 0.02, min(1.0, max(highs) + 0.02) + 0.01)
    axes[0][0].set_ylabel("test accuracy", fontsize=9)
    handles = [Line2D([], [], color=COLORS["ceiling"], marker="s", label="ceiling (strong, ground truth)")]
    for weak in weaks:
        handles += [Line2D([], [], color=color[weak], marker="o", label=f"student of {model_label(weak)}"),
                    Line2D([], [], color=color[weak], ls="--", label=f"{model_label(weak)} alone (weak)")]
    handles.append(Line2D([], [], color=CHANCE_COLOR, ls=":", label=f"chance ({CHANCE})"))
    legend_right(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"{title}: test accuracy by strong model" if title else "test accuracy by strong model",
                 fontsize=10)
    fig.tight_layout()
    caption(fig, f"Error bars: {_interval_note(pairs)}; for the ceiling, the median over its runs.")
    return fig


def plot_pgr_by_method(per_seed: pd.DataFrame, summary: pd.DataFrame, title: str = "") -> Figure:
    """PGR of every (pair, seed) by method, with the median and its 95% interval across pairs and seeds.

    Where every value is undefined (the ceiling never beats the weak model) or one value leaves no
    interval, the panel says so at that method instead of showing nothing.
    """
    one_dataset = summary["dataset"].nunique() == 1
    labels = list(summary["method"] if one_dataset else summary["dataset"] + " · " + summary["method"])
    fig, ax = plt.subplots(figsize=(max(4.6, 1.3 * len(labels) + 2.0), 3.4))
    rng = np.random.default_rng(0)
    ticks = []
    for i, (_, row) in enumerate(summary.iterrows()):
        g = per_seed[(per_seed["dataset"] == row["dataset"]) & (per_seed["method"] == row["method"])]
        values = g["pgr"].dropna().to_numpy(dtype=float)
        ax.scatter(i - 0.12 + rng.uniform(-0.1, 0.1, len(values)), values, s=14, alpha=0.55,
                   color=COLORS["student"], zorder=3)
        matched = g["baseline_pgr"].dropna().to_numpy(dtype=float) if "baseline_pgr" in g else np.array([])
        if len(matched):  # the noise-matched baseline's PGR, to the right of the median
            ax.scatter(i + 0.36 + rng.uniform(-0.05, 0.05, len(matched)), matched, s=14, alpha=0.55, marker="^",
                       color=COLORS["baseline"], zorder=3)
        median, lo, hi = (row[k] if pd.notna(row[k]) else None for k in ("pgr", "pgr_lo", "pgr_hi"))
        if median is not None and lo is not None and hi is not None:
            ax.errorbar([i + 0.18], [median], yerr=[[median - lo], [hi - median]],
                        fmt="D", color=COLORS["ceiling"], capsize=5, ms=6, zorder=4)
        elif median is not None:
            ax.plot([i + 0.18], [median], "D", color=COLORS["ceiling"], ms=6, zorder=4)
            ax.annotate("one value:\nno interval", (i + 0.18, median), xytext=(0, -8), textcoords="offset points",
                        ha="center", va="top", fontsize=7, color="#555555")
        else:
            ax.text(i, 0.5, "PGR undefined\nfor every value", ha="center", va="center", fontsize=7, color="#555555")
        n = f"n={row['values']}" + (f", {row['undefined']} undefined" if row["undefined"] else "")
        ticks.append(f"{labels[i]}\n({n})")
    ax.axhline(0, color=COLORS["weak"], lw=1, ls="--", zorder=1)
    ax.axhline(1, color=COLORS["ceiling"], lw=1, ls=":", zorder=1)
    ax.set_xticks(range(len(labels)), ticks, fontsize=8)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    low, high = ax.get_ylim()
    # A pair whose ceiling barely beats its weak model can give a PGR of -20: keep the axis on the
    # range where PGR is readable and mark such values at its edge, with their value.
    low, high = max(min(low, -0.1), PGR_AXIS[0]), min(max(high, 1.1), PGR_AXIS[1])
    ax.set_ylim(low, high)
    _mark_beyond(ax, per_seed, summary, low, high)
    ax.set_ylabel("PGR (0 = weak, 1 = ceiling)", fontsize=9)
    dataset = summary["dataset"].iloc[0] if one_dataset and len(summary) else ""
    ax.set_title(title or (f"{dataset}: " if dataset else "") + "PGR by method over pairs and seeds", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    handles = [Line2D([], [], color=COLORS["student"], marker="o", ls="", alpha=0.55, label="one (pair, seed)"),
               Line2D([], [], color=COLORS["ceiling"], marker="D", ls="", label="median, 95% CI"),
               Line2D([], [], color=COLORS["baseline"], marker="^", ls="", alpha=0.55,
                      label="noise-matched baseline"),
               Line2D([], [], color=COLORS["weak"], ls="--", label="0: weak model"),
               Line2D([], [], color=COLORS["ceiling"], ls=":", label="1: ceiling")]
    legend_right(fig, handles, [h.get_label() for h in handles])
    fig.tight_layout()
    caption(fig, "Median PGR with a 95% bootstrap interval over pairs and seeds (pairs resampled, then seeds "
                 "within each pair); n: defined (pair, seed) values. Triangles: a student trained on the truth "
                 "flipped at the weak labels' error rates. PGR is undefined where the ceiling does not beat the "
                 f"weak model; values outside [{PGR_AXIS[0]}, {PGR_AXIS[1]}] are marked at the edge with their value.")
    return fig


PGR_AXIS = (-1.5, 2.5)
"""The widest PGR range the by-method plot shows; values beyond it are marked at the edge."""


def _mark_beyond(ax: Any, per_seed: pd.DataFrame, summary: pd.DataFrame, low: float, high: float) -> None:
    """Label each method's PGR values outside [low, high] at the axis edge (student and baseline alike)."""
    for i, (_, row) in enumerate(summary.iterrows()):
        g = per_seed[(per_seed["dataset"] == row["dataset"]) & (per_seed["method"] == row["method"])]
        for column, x, color in (("pgr", i - 0.12, COLORS["student"]), ("baseline_pgr", i + 0.36, COLORS["baseline"])):
            values = g[column].dropna().to_numpy(dtype=float) if column in g else np.array([])
            for value in values[(values < low) | (values > high)]:
                edge, va, arrow = (low, "bottom", "↓") if value < low else (high, "top", "↑")
                ax.annotate(f"{arrow} {value:.1f}", (x, edge), ha="center", va=va, fontsize=7, color=color,
                            annotation_clip=False)


def _short(model: str) -> str:
    return Path(model).name if "/" in model and Path(model).exists() else model


# --- tables ----------------------------------------------------------------------------------
def markdown_summary(pairs: pd.DataFrame, summary: pd.DataFrame, order: Sequence[str], figures: Sequence[str]) -> str:
    """The report's Markdown: the per-method summary, then a table of every pair, then the figures."""
    rank = {m: i for i, m in enumerate(order)}
    lines = [
        "# Weak-to-strong report", "",
        f"{len(pairs)} runs; datasets: {', '.join(sorted(pairs['dataset'].unique()))}; "
        f"methods: {', '.join(sorted(pairs['method'].unique()))}; ladder: {' < '.join(order)}.", "",
        "## PGR by method", "",
        "Median across pairs and seeds, 95% bootstrap interval (pairs resampled, then seeds). "
        "Undefined: (pair, seed) values where the ceiling does not beat the weak model.", "",
        "Baseline: the noise-matched student, trained on the truth flipped at random at the weak labels' own "
        "class-conditional error rates. A student below it imitates the weak model's systematic errors; "
        "a student above it learns more than the amount of correct labels alone explains.", "",
        "| dataset | method | pairs | values | median PGR [95% CI] | median baseline PGR [95% CI] | undefined "
        "| median student acc | median baseline acc |",
        "|---|---|---:|---:|---|---|---:|---:|---:|",
    ]
    for _, r in summary.iterrows():
        lines.append(f"| {r['dataset']} | {r['method']} | {r['pairs']} | {r['values']} | "
                     f"{Estimate(r['pgr'], r['pgr_lo'], r['pgr_hi']):.2f} | "
                     f"{Estimate(r['baseline_pgr'], r['baseline_pgr_lo'], r['baseline_pgr_hi']):.2f} | "
                     f"{r['undefined']} | {Estimate(r['student_acc']):.3f} | {Estimate(r['baseline_acc']):.3f} |")
    lines += ["", "## Every pair", "",
              "Test accuracy with 95% intervals pooled over seeds; PGR = (student − weak) / (ceiling − weak), "
              "baseline PGR the same with the noise-matched baseline as the student.", "",
              "| dataset | weak | strong | method | seeds | weak acc | student acc | baseline acc | ceiling acc "
              "| PGR [95% CI] | baseline PGR [95% CI] | run |",
              "|---|---|---|---|---:|---|---|---|---|---|---|---|"]
    ordered = pairs.assign(_w=pairs["weak"].map(rank), _s=pairs["strong"].map(rank))
    for _, r in ordered.sort_values(["dataset", "method", "_w", "_s"]).iterrows():
        accs = " | ".join(f"{Estimate(r[f'{role}_acc'], r[f'{role}_lo'], r[f'{role}_hi']):.3f}" for role in ROLES)
        lines.append(f"| {r['dataset']} | {_short(r['weak'])} | {_short(r['strong'])} | {r['method']} | {r['seeds']} | "
                     f"{accs} | {Estimate(r['pgr'], r['pgr_lo'], r['pgr_hi']):.2f} | "
                     f"{Estimate(r['baseline_pgr'], r['baseline_pgr_lo'], r['baseline_pgr_hi']):.2f} | {r['run']} |")
    lines += ["", "## Figures", ""] + [f"![{name}]({name})" for name in figures]
    return "\n".join(lines) + "\n"


def write_report(paths: Sequence[str | Path], out: str | Path | None = None) -> list[Path]:
    """Write PNG plots, ``summary.md`` and ``pairs.csv`` for the runs under ``paths``; return the files."""
    runs, ladder = find_runs(paths)
    pairs, per_seed = load_runs(runs)
    order = ladder_order(pairs, ladder)
    first = Path(paths[0])
    report_dir = Path(out) if out else (first / "report" if not is_finished(first) else Path("w2s-report"))
    report_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(per_seed)
    written, figures = [], []
    for dataset, g in pairs.groupby("dataset", sort=True):
        fig = plot_accuracy_vs_strong(g, [m for m in order if m in set(g["weak"]) | set(g["strong"])], title=dataset)
        written += save_figure(fig, report_dir, f"accuracy_vs_strong_{dataset}")
        plt.close(fig)
    fig = plot_pgr_by_method(per_seed, summary)
    written += save_figure(fig, report_dir, "pgr_by_method")
    plt.close(fig)
    figures = [p.name for p in written if p.suffix == ".png"]
    pairs.to_csv(report_dir / "pairs.csv", index=False)
    (report_dir / "summary.md").write_text(markdown_summary(pairs, summary, order, figures))
    return [*written, report_dir / "pairs.csv", report_dir / "summary.md"]
