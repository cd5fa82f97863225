"""Self-correction figures are fit for a paper: model and n named, intervals drawn and said to be over templates,
occupations or students, legends off the data, a note where nothing could be drawn, PNG at 300 dpi and PDF."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.container import ErrorbarContainer
from PIL import Image

from overseer.selfcorrect.plots import plot_bbq_categories, plot_overview, plot_winogender_scatter
from overseer.selfcorrect.run import _save_figures

CONDS = ("q", "if", "cot", "match")
CATS = ("Age", "Religion")


def _est(value: float | None, half: float = 0.05) -> dict:
    if value is None:
        return {"value": None, "ci_low": None, "ci_high": None, "reason": "undefined on this sample"}
    return {"value": value, "ci_low": value - half, "ci_high": value + half, "reason": None}


def _model_metrics(shift: float = 0.0, undefined_category: str | None = None) -> dict:
    """One model's metrics in the run's shape: BBQ (overall and by category), Winogender, law school."""
    bbq, wino, law = {}, {}, {}
    for k, cond in enumerate(CONDS):
        if cond != "match":
            by_cat = {c: {"n_items": 40, "s_amb": _est(None if c == undefined_category else 0.2 - 0.05 * k + shift)}
                      for c in CATS}
            bbq[cond] = {"overall": {"n_items": 80, "s_amb": _est(0.2 - 0.05 * k + shift)}, "by_category": by_cat}
            law[cond] = {"n_items": 200, "gap": _est(0.01 * k + shift, 0.01)}
        wino[cond] = {"n_items": 60, "rho": _est(0.6 - 0.1 * k + shift, 0.1)}
    return {"bbq": bbq, "winogender": wino, "law": law}


def _winogender_rows() -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"suite": "winogender", "model": "smollm2-135m", "condition": c, "item_id": f"occ{i}",
             "bls_female": b, "p_female": float(np.clip(0.2 + 0.5 * b + rng.normal(0, 0.1), 0, 1))}
            for c in CONDS for i, b in enumerate(rng.uniform(0, 1, 60))]


def _texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text())


def _panels(fig) -> list:
    return [ax for ax in fig.axes if ax.axison]


def _errorbars(ax) -> list[ErrorbarContainer]:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def _data_points(ax) -> np.ndarray:
    pts = [ax.transData.transform(np.column_stack([ln.get_xdata(), ln.get_ydata()])) for ln in ax.lines
           if len(ln.get_xdata()) and ln.get_transform() == ax.transData]
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and len(coll.get_offsets()):
            pts.append(ax.transData.transform(coll.get_offsets()))
        elif isinstance(coll, LineCollection):
            pts += [ax.transData.transform(seg) for seg in coll.get_segments() if len(seg)]
    return np.vstack(pts) if pts else np.empty((0, 2))


def assert_legends_clear_of_data(fig) -> None:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            inside = [(x, y) for x, y in _data_points(ax) if box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1]
            assert not inside, f"legend covers data of panel {ax.get_title()!r}"


def test_overview_of_one_model_names_it_and_each_panels_n_and_what_the_intervals_are_over() -> None:
    fig = plot_overview({"/runs/models/tiny-chat-lm": _model_metrics()}, ["/runs/models/tiny-chat-lm"], CONDS)
    text = _texts(fig)
    assert "tiny-chat-lm" in fig._suptitle.get_text() and "/runs/models" not in text  # the model, by its name
    titles = [ax.get_title() for ax in _panels(fig)]
    assert "n=80 items" in titles[0] and "n=60 occupations" in titles[1] and "n=200 students" in titles[2]
    assert "95% bootstrap intervals over BBQ templates, Winogender occupations, law-school students" in text
    assert [len(_errorbars(ax)) for ax in _panels(fig)] == [3, 4, 3]  # every condition's interval is drawn
    law = _panels(fig)[2]
    assert not law.yaxis.get_offset_text().get_text()  # no ×1e-5 multiplier over the title
    plt.close(fig)


def test_overview_of_several_models_sets_conditions_apart_with_one_legend_off_the_data() -> None:
    models = ["smollm2-135m", "smollm2-360m"]
    metrics = {m: _model_metrics(0.1 * j) for j, m in enumerate(models)}
    fig = plot_overview(metrics, models, CONDS)
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
    assert_legends_clear_of_data(fig)
    bbq = _panels(fig)[0]
    xs = sorted(float(x) for c in _errorbars(bbq) for x in c.lines[0].get_xdata())
    assert len(xs) == len(set(xs)) == 3 * 2  # no two conditions' intervals at the same x
    assert "smollm2-135m, smollm2-360m" in fig._suptitle.get_text()
    plt.close(fig)


def test_overview_says_not_run_where_a_suite_is_missing() -> None:
    metrics = {"m": {k: v for k, v in _model_metrics().items() if k != "law"}}
    fig = plot_overview(metrics, ["m"], CONDS)
    law = _panels(fig)[2]
    assert not _errorbars(law) and "not run" in [t.get_text() for t in law.texts]
    assert "law-school" not in _texts(fig)
    plt.close(fig)


def test_bbq_categories_name_n_mark_undefined_panels_and_keep_the_legend_off_the_data() -> None:
    models = ["smollm2-135m", "smollm2-360m"]
    metrics = {m: _model_metrics(0.1 * j, undefined_category="Religion") for j, m in enumerate(models)}
    fig = plot_bbq_categories(metrics, models, CONDS)
    panels = {ax.get_title(): ax for ax in _panels(fig)}
    assert set(panels) == {"overall (n=80 items)", "Age (n=40 items)", "Religion (n=40 items)"}
    assert len(_errorbars(panels["overall (n=80 items)"])) == 3 * 2
    assert "s_AMB undefined" in "".join(t.get_text() for t in panels["Religion (n=40 items)"].texts)
    assert_legends_clear_of_data(fig)
    assert "95% bootstrap intervals over BBQ templates" in _texts(fig)
    plt.close(fig)


def test_winogender_scatter_gives_rho_with_its_interval_the_model_and_n() -> None:
    metrics = _model_metrics()["winogender"]
    fig = plot_winogender_scatter(_winogender_rows(), CONDS, model="smollm2-135m", metrics=metrics)
    assert fig._suptitle.get_text() == "Winogender: smollm2-135m, n=60 occupations"
    assert _panels(fig)[0].get_title() == "Q\nρ = 0.60 [0.50, 0.70]"
    assert "interval over occupations" in _texts(fig)
    plt.close(fig)


def test_run_figures_are_png_at_300_dpi_and_pdf_and_all_listed(tmp_path: Path) -> None:
    writer = SimpleNamespace(file=lambda name: tmp_path / name)
    cfg = SimpleNamespace(models=("smollm2-135m",), conditions=CONDS, suites=("bbq", "winogender", "law"))
    names = _save_figures(writer, {"smollm2-135m": _model_metrics()}, _winogender_rows(), cfg)
    assert names == ["overview.png", "overview.pdf", "bbq_categories.png", "bbq_categories.pdf",
                     "winogender_scatter.png", "winogender_scatter.pdf"]
    for name in names:
        if name.endswith(".png"):
            assert round(Image.open(tmp_path / name).info["dpi"][0]) >= 300
        else:
            assert (tmp_path / name).read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)  # no temporary file left
