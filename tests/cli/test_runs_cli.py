"""``overseer runs``: listing with data sizes, comparing every differing resolved value, JSON, safe names."""

import json
from pathlib import Path
from typing import Any

import pytest

from overseer.cli.main import main
from overseer.results import start_run

BASE = {"dataset": "geo_facts", "weak": "w", "strong": "s", "n_train": 120, "n_label": None, "n_test": 100,
        "seeds": [0], "head": {"lr": 0.01, "epochs": 3}, "method_args": {}}
XENT = {**BASE, "method": "xent"}
LOGCONF = {**BASE, "method": "logconf", "method_args": {"aux_coef": 0.5, "warmup_frac": 0.2},
           "head": {"lr": 0.01, "epochs": 3, "hidden_dim": None}}


def _write_run(runs: Path, resolved: dict[str, Any], pgr: float, **extra: Any) -> str:
    writer = start_run("w2s", resolved, runs, resolved=resolved)
    with writer:
        writer.finish({"pgr": {"value": pgr, "ci_low": None, "ci_high": None}},
                      summary={"method": resolved["method"], "pgr": pgr}, **extra)
    return writer.path.name


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, str, str]:
    runs = tmp_path / "runs"
    xent = _write_run(runs, XENT, 0.1, dataset={"name": "geo_facts", "size": 600})
    logconf = _write_run(runs, LOGCONF, 0.2, dataset={"name": "geo_facts", "size": 600})
    return runs, xent, logconf


def _lines_with(text: str, word: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.split() and line.split()[0] == word]


def test_compare_shows_every_differing_value_including_ones_only_one_run_has(
        two_runs: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    runs, xent, logconf = two_runs
    assert main(["runs", xent, logconf, "--out", str(runs)]) == 0
    out = capsys.readouterr().out
    differ = out.split("config values that differ:")[1]
    assert _lines_with(differ, "method") == [["method", "xent", "logconf"]]
    assert _lines_with(differ, "method_args.aux_coef") == [["method_args.aux_coef", "-", "0.500"]]
    assert _lines_with(differ, "method_args.warmup_frac") == [["method_args.warmup_frac", "-", "0.200"]]
    assert _lines_with(differ, "head.hidden_dim") == [["head.hidden_dim", "-", "null"]]  # None, but present
    for same in ("n_train", "n_label", "head.lr", "seeds", "dataset"):
        assert not _lines_with(differ, same), same
    sizes = ["train", "120,", "label", "120,", "test", "100,", "dataset", "600"]
    assert _lines_with(out, "sizes") == [["sizes", *sizes, *sizes]]


def test_compare_as_json_for_scripts(two_runs: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    runs, xent, logconf = two_runs
    assert main(["runs", xent, logconf, "--out", str(runs), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in data["runs"]] == [xent, logconf]
    assert data["runs"][1]["pgr"] == 0.2 and data["runs"][1]["sizes"] == {"train": 120, "label": 120, "test": 100,
                                                                     "dataset": 600}
    assert data["differing"] == {
        "head.hidden_dim": {logconf: None},
        "method": {xent: "xent", logconf: "logconf"},
        "method_args.aux_coef": {logconf: 0.5},
        "method_args.warmup_frac": {logconf: 0.2},
    }


def test_listing_shows_data_sizes_of_every_pillar(two_runs: tuple[Path, str, str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    runs, xent, logconf = two_runs
    writer = start_run("selfcorrect", {"models": ["m"]}, runs)
    with writer:
        writer.finish({}, summary={"models": "m"}, n_items={"bbq": 12, "winogender": 5})
    assert main(["runs", "--out", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "sizes" in out.splitlines()[0]
    assert out.count("train 120, label 120, test 100, dataset 600") == 2 and "bbq 12, winogender 5" in out
    assert main(["runs", "--out", str(runs), "--json", "--pillar", "selfcorrect"]) == 0
    listed = json.loads(capsys.readouterr().out)["runs"]
    assert [(r["pillar"], r["sizes"], r["models"]) for r in listed] == [
        ("selfcorrect", {"bbq": 12, "winogender": 5}, "m")]
    assert "pgr" not in listed[0]  # another pillar's summary fields are not this run's


def test_identical_configs_say_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    a = _write_run(runs, XENT, 0.1)
    b = _write_run(runs, {**XENT, "note": {}}, 0.1)  # an empty mapping is no value
    assert main(["runs", a, b, "--out", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "configs are identical" in out and "versions that differ" not in out  # one environment made both


def test_compare_shows_the_library_versions_and_lock_that_differ(two_runs: tuple[Path, str, str],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    runs, xent, logconf = two_runs
    recorded = json.loads((runs / logconf / "versions.json").read_text())
    assert recorded["trl"] and recorded["peft"] and recorded["accelerate"] and "inspect-ai" in recorded
    assert recorded["lock"]["sha256"] and isinstance(recorded["lock"]["differs"], list)
    recorded["trl"] = "0.0.1"
    recorded["lock"] = {**recorded["lock"], "sha256": "0" * 16, "differs": ["trl: 1.16.0 -> 0.0.1"]}
    (runs / logconf / "versions.json").write_text(json.dumps(recorded))
    assert main(["runs", xent, logconf, "--out", str(runs)]) == 0
    differ = capsys.readouterr().out.split("versions that differ:")[1]
    assert _lines_with(differ, "trl")[0][-1] == "0.0.1" and _lines_with(differ, "lock.sha256")
    assert _lines_with(differ, "lock.differs") and not _lines_with(differ, "torch")
    assert main(["runs", xent, logconf, "--out", str(runs), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["differing_versions"]["trl"][logconf] == "0.0.1"
    assert set(data["differing_versions"]) == {"trl", "lock.sha256", "lock.differs"}


@pytest.mark.parametrize("name", ["../runs", "w2s-x/../../etc", ".index", "a b"])
def test_a_run_name_that_is_not_a_plain_name_is_refused_in_one_line(name: str, two_runs: tuple[Path, str, str],
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    runs, xent, _ = two_runs
    assert main(["runs", xent, name, "--out", str(runs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: run name {name!r} is not allowed; use letters"), err


def test_an_unknown_run_is_one_line_naming_the_known_ones(two_runs: tuple[Path, str, str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    runs, xent, logconf = two_runs
    assert main(["runs", xent, "w2s-000000000000", "--out", str(runs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown run 'w2s-000000000000'" in err[0] and xent in err[0] and logconf in err[0]
