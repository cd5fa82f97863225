import json
from pathlib import Path

import numpy as np
import pytest

from overseer.errors import OverseerError
from overseer.results import write_json
from overseer.w2s.report import (
    find_runs,
    ladder_order,
    load_runs,
    median_interval,
    plot_accuracy_vs_strong,
    plot_pgr_by_method,
    summarize,
    write_report,
)

LADDER = ["s", "m", "l"]
ACC = {"s": 0.6, "m": 0.7, "l": 0.8}


def _fake_run(root: Path, weak: str, strong: str, method: str, student: dict[int, float],
              baseline: dict[int, float] | None = None) -> Path:
    """A finished run directory with the files the report reads (as `overseer w2s run` writes them;
    without ``baseline``, as runs from before the noise-matched baseline did)."""
    path = root / f"w2s-{weak}{strong}{method}"
    path.mkdir(parents=True)
    cfg = {"dataset": "geo_facts", "weak": weak, "strong": strong, "method": method, "method_args": {}}
    write_json(path / "config.json", {"pillar": "w2s", "config": cfg, "hash": "x"})

    def est(v: float) -> dict:
        return {"value": v, "ci_low": v - 0.05, "ci_high": v + 0.05}

    mean_student = float(np.mean(list(student.values())))
    gap = ACC[strong] - ACC[weak]
    write_json(path / "metrics.json", {
        "metrics": {
            "weak": {"accuracy": est(ACC[weak])}, "student": {"accuracy": est(mean_student)},
            "ceiling": {"accuracy": est(ACC[strong])},
            "pgr": {"accuracy": {"value": (mean_student - ACC[weak]) / gap, "ci_low": 0.0, "ci_high": 1.0}},
        },
        "config": cfg,
        "timings": {"wall_s": 1.0},
        "per_seed": {str(s): {"weak": ACC[weak], "student": v, "ceiling": ACC[strong]} for s, v in student.items()},
        "n_seeds": len(student),
    })
    if baseline is not None:
        record = json.loads((path / "metrics.json").read_text())
        mean_baseline = float(np.mean(list(baseline.values())))
        record["metrics"]["baseline"] = {"accuracy": est(mean_baseline)}
        record["metrics"]["baseline_pgr"] = {"accuracy": {"value": (mean_baseline - ACC[weak]) / gap,
                                                          "ci_low": 0.0, "ci_high": 1.0}}
        for seed, value in baseline.items():
            record["per_seed"][str(seed)]["baseline"] = value
        write_json(path / "metrics.json", record)
    return path


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    for method, share in (("xent", 0.5), ("logconf", 0.75)):
        for i, weak in enumerate(LADDER):
            for strong in LADDER[i + 1:]:
                gap = ACC[strong] - ACC[weak]
                _fake_run(root, weak, strong, method, {0: ACC[weak] + share * gap, 1: ACC[weak] + share * gap + 0.01})
    return root


def test_tables_hold_every_pair_and_per_seed_pgr(runs_dir: Path) -> None:
    runs, ladder = find_runs([runs_dir])
    pairs, per_seed = load_runs(runs)
    assert len(pairs) == 6 and len(per_seed) == 12 and ladder is None
    assert ladder_order(pairs) == LADDER  # inferred from which models sit below which
    summary = summarize(per_seed).set_index("method")
    assert summary.loc["xent", "pairs"] == 3 and summary.loc["xent", "values"] == 6
    assert summary.loc["logconf", "pgr"] > summary.loc["xent", "pgr"]
    assert summary.loc["xent", "pgr_lo"] <= summary.loc["xent", "pgr"] <= summary.loc["xent", "pgr_hi"]


def test_median_interval_resamples_groups() -> None:
    values = np.array([0.1, 0.2, 0.9, 1.0])
    median, low, high = median_interval(values, np.array(["a", "a", "b", "b"]))
    assert median == pytest.approx(0.55) and low < median < high
    assert median_interval(np.array([0.3]), np.array(["a"])) == (0.3, None, None)


def test_plots_are_figures_with_one_panel_per_method(runs_dir: Path) -> None:
    pairs, per_seed = load_runs(find_runs([runs_dir])[0])
    fig = plot_accuracy_vs_strong(pairs, LADDER)
    assert len(fig.axes) == 2
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == LADDER[1:]  # the strong models: "s" is never one, so it gets no empty column
    lines = fig.axes[0].get_lines()
    assert any(list(line.get_ydata()) == [0.7, 0.8] for line in lines)  # the ceiling over m and l
    assert len(plot_pgr_by_method(per_seed, summarize(per_seed)).axes) == 1


def test_write_report_writes_pngs_and_markdown(runs_dir: Path, tmp_path: Path) -> None:
    files = write_report([runs_dir], out=tmp_path / "report")
    names = {f.name for f in files}
    assert {"accuracy_vs_strong_geo_facts.png", "accuracy_vs_strong_geo_facts.pdf", "pgr_by_method.png",
            "pgr_by_method.pdf", "summary.md", "pairs.csv"} == names
    for f in files:
        if f.suffix == ".png":
            assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "report" / "summary.md").read_text()
    assert "| geo_facts | xent | 3 | 6 | 0.5" in md  # median of 0.5, 0.5, 0.5, 0.55, 0.6, 0.6
    assert "| geo_facts | s | m | xent | 2 |" in md and md.count("| geo_facts |") == 2 + 6


def test_sweep_directory_gives_its_ladder_order(runs_dir: Path) -> None:
    record = runs_dir / "sweep-x"
    record.mkdir()
    write_json(record / "sweep.json", {"config": {"ladder": ["l", "m", "s"]}})
    (record / "summary.json").write_text(json.dumps({"runs": [p.name for p in runs_dir.glob("w2s-*")]}))
    runs, ladder = find_runs([record])
    assert len(runs) == 6 and ladder == ["l", "m", "s"]


def test_nothing_to_report_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OverseerError, match="no finished w2s runs"):
        find_runs([tmp_path])


def test_a_run_in_the_old_metrics_layout_is_a_one_line_error(runs_dir: Path) -> None:
    old = next(runs_dir.glob("w2s-*"))
    write_json(old / "metrics.json", {"weak": {}, "student": {}, "ceiling": {}, "pgr": {}})
    with pytest.raises(OverseerError, match="without metrics, config, timings"):
        load_runs(find_runs([runs_dir])[0])


def test_noise_matched_baseline_is_summarised_beside_the_student(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for i, weak in enumerate(LADDER):
        for strong in LADDER[i + 1:]:
            gap = ACC[strong] - ACC[weak]
            _fake_run(root, weak, strong, "xent", {0: ACC[weak] + 0.3 * gap, 1: ACC[weak] + 0.3 * gap},
                      baseline={0: ACC[weak] + 0.8 * gap, 1: ACC[weak] + 0.8 * gap})
    pairs, per_seed = load_runs(find_runs([root])[0])
    summary = summarize(per_seed).iloc[0]
    assert summary["pgr"] == pytest.approx(0.3) and summary["baseline_pgr"] == pytest.approx(0.8)
    assert pairs["baseline_acc"].notna().all()
    write_report([root], out=tmp_path / "report")
    md = (tmp_path / "report" / "summary.md").read_text()
    assert "| geo_facts | xent | 3 | 6 | 0.30 [0.30, 0.30] | 0.80 [0.80, 0.80] |" in md
