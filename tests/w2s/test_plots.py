"""Weak-to-strong figures are fit for a paper: intervals drawn and named, a chance line, legends off the data,
PNG at 300 dpi with a PDF twin."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.container import ErrorbarContainer
from PIL import Image

from overseer.data import load_dataset
from overseer.results import write_json
from overseer.results.plots import model_label, save_figure
from overseer.w2s import W2SConfig
from overseer.w2s.plots import plot_accuracies
from overseer.w2s.report import plot_accuracy_vs_strong, plot_pgr_by_method, summarize, write_report
from overseer.w2s.run import start, write_run

LADDER = ["s", "m", "l"]
ACC = {"s": 0.6, "m": 0.7, "l": 0.8}


def _est(value: float | None, half: float = 0.04) -> dict:
    if value is None:
        return {"value": None, "ci_low": None, "ci_high": None, "reason": "undefined"}
    return {"value": value, "ci_low": value - half, "ci_high": value + half, "reason": None}


def _run_metrics(weak: float, student: float, ceiling: float) -> dict:
    gap = ceiling - weak
    return {"weak": {"accuracy": _est(weak)}, "student": {"accuracy": _est(student)},
            "ceiling": {"accuracy": _est(ceiling)},
            "pgr": {"accuracy": _est((student - weak) / gap if gap > 0 else None, 0.2)}}


def _pairs(methods: tuple[str, ...] = ("xent", "logconf")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The report's two tables for a 3-rung ladder: every pair, 2 seeds, students near the ceiling."""
    rows, seeds = [], []
    for k, method in enumerate(methods):
        for i, weak in enumerate(LADDER):
            for strong in LADDER[i + 1:]:
                gap = ACC[strong] - ACC[weak]
                student = ACC[weak] + (0.5 + 0.4 * k) * gap
                base = {"run": f"w2s-{weak}{strong}{method}", "dataset": "geo_facts", "weak": weak, "strong": strong,
                        "method": method}
                row = {**base, "seeds": 2, "n_test": 500}
                for role, acc in (("weak", ACC[weak]), ("student", student), ("ceiling", ACC[strong])):
                    row |= {f"{role}_acc": acc, f"{role}_lo": acc - 0.03, f"{role}_hi": acc + 0.03}
                row |= {"pgr": 0.5, "pgr_lo": 0.3, "pgr_hi": 0.7}
                rows.append(row)
                for seed in (0, 1):
                    s = student + 0.01 * seed
                    seeds.append({**base, "seed": seed, "weak_acc": ACC[weak], "student_acc": s,
                                  "ceiling_acc": ACC[strong], "pgr": (s - ACC[weak]) / gap})
    return pd.DataFrame(rows), pd.DataFrame(seeds)


# --- what the tests look at ---------------------------------------------------------------------
def _errorbars(ax) -> list[ErrorbarContainer]:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def _interval_segments(ax) -> int:
    """Vertical error-bar segments drawn on ``ax`` (one per point that has an interval)."""
    return sum(len(c.get_segments()) for c in ax.collections if isinstance(c, LineCollection))


def _horizontal_lines_at(ax, y: float) -> list:
    return [ln for ln in ax.lines if len(set(ln.get_ydata())) == 1 and np.isclose(ln.get_ydata()[0], y)
            and len(ln.get_xdata()) == 2]


def _data_points(ax) -> np.ndarray:
    """Display coordinates of every plotted point: line vertices, scatter offsets, error-bar ends."""
    pts = [ax.transData.transform(np.column_stack([ln.get_xdata(), ln.get_ydata()])) for ln in ax.lines
           if len(ln.get_xdata()) and not _is_reference(ln)]
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and len(coll.get_offsets()):
            pts.append(ax.transData.transform(coll.get_offsets()))
        elif isinstance(coll, LineCollection):
            pts += [ax.transData.transform(seg) for seg in coll.get_segments() if len(seg)]
    return np.vstack(pts) if pts else np.empty((0, 2))


def _is_reference(line) -> bool:
    """axhline/axvline: drawn in axes coordinates across the panel, not data."""
    return line.get_transform() != line.axes.transData


def _legends(fig) -> list:
    return [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]


def assert_legends_clear_of_data(fig) -> None:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = _legends(fig)
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            pts = _data_points(ax)
            inside = [(x, y) for x, y in pts if box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1]
            assert not inside, f"legend covers data of panel {ax.get_title()!r} at {inside[:3]}"


def _texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text())


# --- the run figure ---------------------------------------------------------------------------
def test_run_figure_rises_from_a_chance_line_with_three_named_intervals() -> None:
    fig = plot_accuracies(_run_metrics(0.66, 0.74, 0.82), title="geo_facts: a → b (xent)", n_test=500, n_seeds=2)
    ax = fig.axes[0]
    assert _interval_segments(ax) == 3  # weak, student, ceiling
    assert _horizontal_lines_at(ax, 0.5), "no chance line at 0.5"
    low, high = ax.get_ylim()
    assert 0.45 <= low <= 0.5 and high >= 0.86  # starts at chance, not at 0 or at the lowest interval
    text = _texts(fig)
    assert "95% bootstrap intervals over 2 seeds × 500 test examples" in text
    assert "PGR 0.50 [95% CI" in text
    plt.close(fig)


def test_run_figure_below_chance_keeps_every_interval_in_view() -> None:
    fig = plot_accuracies(_run_metrics(0.505, 0.48, 0.475), n_test=100)
    ax = fig.axes[0]
    assert ax.get_ylim()[0] < 0.475 - 0.04  # the lowest interval end is inside the axes
    assert "PGR undefined" in ax.get_title()
    assert "95% bootstrap intervals over 100 test examples" in _texts(fig)
    plt.close(fig)


def test_write_run_saves_accuracy_png_at_300_dpi_and_a_pdf(tmp_path: Path) -> None:
    """The real publishing path: a run's accuracy figure as accuracy.png (300 dpi) and accuracy.pdf."""
    cfg = W2SConfig(dataset="geo_facts", dataset_args={"limit": 400}, weak="/some/dir/tiny-weak",
                    strong="smollm2-135m", n_train=100, n_test=60, n_bootstrap=50)
    rng = np.random.default_rng(0)
    frames = []
    for split in ("test", "weak_label"):
        y = rng.integers(0, 2, 60)
        frames.append(pd.DataFrame({"seed": 0, "split": split, "id": [f"{split}{i}" for i in range(60)], "label": y,
                                    **{f"{r}_prob": np.clip(y * 0.6 + rng.uniform(0, 0.4, 60), 0, 1)
                                       for r in ("weak", "student", "baseline", "ceiling")}}))
    result = write_run(start(cfg, cfg.identity(), tmp_path), cfg, load_dataset("geo_facts", limit=400),
                       pd.concat(frames, ignore_index=True), {"seconds": 0.0})
    png, pdf = result.path / "accuracy.png", result.path / "accuracy.pdf"
    assert round(Image.open(png).info["dpi"][0]) >= 300
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert not [p for p in result.path.iterdir() if p.name.startswith(".")]  # no temporary file left


# --- the report figures ------------------------------------------------------------------------
def test_accuracy_vs_strong_has_no_empty_tick_intervals_everywhere_and_a_clear_legend() -> None:
    pairs, _ = _pairs()
    fig = plot_accuracy_vs_strong(pairs, LADDER, title="geo_facts")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["logconf", "xent"]
    for ax in panels:
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        assert ticks == ["m", "l"]  # "s" is never a strong model: no empty column for it
        # ceiling at m and l, students of s at m and l, student of m at l: every point has its interval
        assert len(_errorbars(ax)) == 3 and _interval_segments(ax) == 2 + 2 + 1
        assert _horizontal_lines_at(ax, 0.5), "no chance line"
        assert ax.get_ylim()[0] <= 0.5
    assert_legends_clear_of_data(fig)
    text = _texts(fig)
    assert "95% bootstrap intervals over 2 seeds × 500 test examples" in text
    assert "student of s" in text and "student of m" in text  # every weak model is in the one legend
    plt.close(fig)


def test_pgr_by_method_draws_each_interval_or_says_why_not() -> None:
    pairs, per_seed = _pairs(("xent", "logconf", "lone", "never"))
    per_seed.loc[per_seed["method"] == "never", "pgr"] = np.nan  # the ceiling never beats the weak model
    lone = per_seed.index[per_seed["method"] == "lone"]
    per_seed.loc[lone[1:], "pgr"] = np.nan  # one defined value: no interval
    summary = summarize(per_seed)
    fig = plot_pgr_by_method(per_seed, summary)
    ax = fig.axes[0]
    assert len(_errorbars(ax)) == 2  # logconf and xent medians with their 95% intervals
    text = _texts(fig)
    assert "one value:\nno interval" in text and "PGR undefined\nfor every value" in text
    assert "95% bootstrap interval over pairs and seeds" in text
    assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == list(summary["method"])
    assert ax.get_xlim()[0] <= -0.5 and ax.get_xlim()[1] >= len(summary) - 0.5  # no point on the frame
    assert fig.get_figwidth() >= 4.6
    assert_legends_clear_of_data(fig)
    plt.close(fig)


def _finished_run(root: Path, weak: str, strong: str) -> None:
    """A finished run directory with the files the report reads (as `overseer w2s run` writes them)."""
    path = root / f"w2s-{weak}{strong}"
    path.mkdir(parents=True)
    cfg = {"dataset": "geo_facts", "weak": weak, "strong": strong, "method": "xent", "method_args": {}}
    write_json(path / "config.json", {"pillar": "w2s", "config": cfg, "hash": "x"})
    student = {0: ACC[weak] + 0.05, 1: ACC[weak] + 0.06}
    write_json(path / "metrics.json", {
        "metrics": _run_metrics(ACC[weak], ACC[weak] + 0.055, ACC[strong]), "config": cfg, "timings": {"wall_s": 1.0},
        "per_seed": {str(s): {"weak": ACC[weak], "student": v, "ceiling": ACC[strong]} for s, v in student.items()},
        "n_seeds": 2, "n_test": 200,
    })


def test_write_report_writes_each_figure_as_png_and_pdf(tmp_path: Path) -> None:
    for i, weak in enumerate(LADDER):
        for strong in LADDER[i + 1:]:
            _finished_run(tmp_path / "runs", weak, strong)
    files = {f.name: f for f in write_report([tmp_path / "runs"], out=tmp_path / "report")}
    for stem in ("accuracy_vs_strong_geo_facts", "pgr_by_method"):
        assert round(Image.open(files[f"{stem}.png"]).info["dpi"][0]) >= 300
        assert files[f"{stem}.pdf"].read_bytes()[:5] == b"%PDF-"
    md = files["summary.md"].read_text()
    assert "![pgr_by_method.png](pgr_by_method.png)" in md


# --- the shared helper ---------------------------------------------------------------------------
def test_save_figure_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    assert [p.name for p in save_figure(fig, tmp_path, "fig")] == ["fig.png", "fig.pdf"]
    before = (tmp_path / "fig.png").read_bytes()

    def broken(path, **kwargs):  # a full disk halfway through the PDF
        Path(path).write_bytes(b"half")
        raise OSError("no space left on device")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(OSError):
        save_figure(fig, tmp_path, "fig")
    assert (tmp_path / "fig.png").read_bytes() == before  # the finished figure is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.pdf", "fig.png"]  # and no temporary file is left
    plt.close(fig)


def test_model_label_names_a_local_model_by_its_folder(tmp_path: Path) -> None:
    assert model_label(str(tmp_path / "tiny-llama")) == "tiny-llama"
    assert model_label("smollm2-135m") == "smollm2-135m"
    assert model_label("HuggingFaceTB/SmolLM2-135M") == "HuggingFaceTB/SmolLM2-135M"  # a hub id stays whole


def test_pgr_far_outside_the_axis_is_marked_at_its_edge_with_its_value() -> None:
    """A pair whose ceiling barely beats its weak model gives PGR -20; the axis stays readable."""
    _, per_seed = _pairs(("xent",))
    per_seed.loc[0, "pgr"] = -20.0
    per_seed["baseline_pgr"] = 0.5
    per_seed.loc[1, "baseline_pgr"] = 7.0
    fig = plot_pgr_by_method(per_seed, summarize(per_seed))
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert low >= -1.5 and high <= 2.5
    labels = {t.get_text() for t in ax.texts}
    assert "↓ -20.0" in labels and "↑ 7.0" in labels
    plt.close(fig)
