"""The one run lifecycle every pillar uses: start (reuse or write), publish atomically, index, one result type."""

import json
import math
import typing
from pathlib import Path

import pytest

from overseer.errors import OverseerError
from overseer.results import RECORD_KEYS, RunResult, list_runs, read_run, start_run, write_json

EST = {"value": 0.7, "ci_low": 0.6, "ci_high": 0.8, "reason": None}


def _publish(runs: Path, config: dict, value: float = 0.7, force: bool = False) -> RunResult:
    writer = start_run("toy", config, runs, force=force, resolved={**config, "device": "cpu"})
    assert writer.existing is None
    with writer:
        (writer.file("notes.txt")).write_text("hello")
        writer.finish({"acc": {**EST, "value": value}, "nan": float("nan")}, timings={"steps": 3},
                      summary={"acc": value}, per_seed={0: value})
    return writer.result


def test_a_finished_run_is_reused_unless_forced(tmp_path: Path) -> None:
    first = _publish(tmp_path, {"x": 1})
    assert not first.reused and first.pillar == "toy" and first.path.name.startswith("toy-")
    assert first.metrics == {"acc": EST, "nan": None}  # what the file holds: NaN is null in memory too
    assert list(first.record) == [*RECORD_KEYS, "per_seed"] and first.record["per_seed"] == {"0": 0.7}
    assert first.config == {"x": 1, "device": "cpu"} and first.timings["steps"] == 3 and first.timings["wall_s"] >= 0
    assert json.loads((first.path / "metrics.json").read_text()) == first.record
    assert json.loads((first.path / "resolved_config.json").read_text()) == first.config
    assert json.loads((first.path / "config.json").read_text())["config"] == {"x": 1}  # the identity is hashed

    again = start_run("toy", {"x": 1}, tmp_path)
    assert isinstance(again.existing, RunResult) and again.existing.reused
    assert again.existing.path == first.path and again.existing.record == first.record
    assert again.existing.summary == first.summary == {"acc": 0.7}

    forced = _publish(tmp_path, {"x": 1}, value=0.9, force=True)
    assert forced.path == first.path and read_run(first.path).metrics["acc"]["value"] == 0.9
    assert _publish(tmp_path, {"x": 2}).path != first.path


def test_published_runs_are_indexed(tmp_path: Path) -> None:
    paths = [_publish(tmp_path, {"x": x}, value=x / 10).path for x in (1, 2)]
    assert (tmp_path / "index.sqlite").is_file()
    frame = list_runs(tmp_path, pillar="toy")
    assert sorted(frame["name"]) == sorted(p.name for p in paths) and set(frame["acc"]) == {0.1, 0.2}


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_exception_publishes_nothing_and_keeps_the_finished_run(tmp_path: Path, error: type) -> None:
    finished = _publish(tmp_path, {"x": 1})
    writer = start_run("toy", {"x": 1}, tmp_path, force=True)
    with pytest.raises(error):
        with writer:
            writer.file("half.txt").write_text("half")
            writer.finish({"acc": {**EST, "value": 0.1}})
            raise error()
    assert read_run(finished.path).metrics["acc"]["value"] == 0.7  # the old run is untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary directory left
    with pytest.raises(RuntimeError, match="no result yet"):
        writer.result  # noqa: B018

    fresh = start_run("toy", {"x": 5}, tmp_path)
    with pytest.raises(ValueError):
        with fresh:
            raise ValueError("boom")
    assert not fresh.path.exists() and start_run("toy", {"x": 5}, tmp_path).existing is None


def test_finish_keeps_the_standard_keys_for_itself(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'config' is a standard metrics.json key"):
        with start_run("toy", {"x": 1}, tmp_path) as writer:
            writer.finish({}, config={"other": 1})


def test_a_run_in_an_older_layout_is_recomputed_not_reused(tmp_path: Path) -> None:
    path = _publish(tmp_path, {"x": 1}).path
    write_json(path / "metrics.json", {"weak": {}, "student": {}})  # the old top-level layout
    assert start_run("toy", {"x": 1}, tmp_path).existing is None
    with pytest.raises(OverseerError, match="without metrics, config, timings"):
        read_run(path)
    with pytest.raises(OverseerError, match="is not a finished run"):
        read_run(tmp_path / "toy-nothing")


def test_every_pillar_returns_the_one_result_type() -> None:
    from overseer.selfcorrect import SelfCorrectResult
    from overseer.selfcorrect import run as selfcorrect_run
    from overseer.w2s import W2SResult
    from overseer.w2s import run as w2s_run

    assert W2SResult is SelfCorrectResult is RunResult
    assert typing.get_type_hints(w2s_run)["return"] is RunResult
    assert typing.get_type_hints(selfcorrect_run)["return"] is RunResult


def _w2s_result(pgr: dict) -> RunResult:
    def acc(v: float, lo: float, hi: float) -> dict:
        return {"accuracy": {"value": v, "ci_low": lo, "ci_high": hi, "reason": None}}

    metrics = {"weak": acc(0.543, 0.513, 0.573), "student": acc(0.546, 0.515, 0.576),
               "ceiling": acc(0.704, 0.673, 0.731), "pgr": {"accuracy": pgr}}
    return RunResult(Path("runs/w2s-x"), metrics, False, 1.0, {}, "w2s")


def test_w2s_summary_line_reads_as_before() -> None:
    import overseer.w2s.run  # noqa: F401  (registers the w2s summary line)

    line = _w2s_result({"value": 0.019, "ci_low": -0.159, "ci_high": 0.18, "reason": None}).summary_line()
    assert line == ("accuracy: weak 0.543 [0.513, 0.573]; student 0.546 [0.515, 0.576]; "
                    "ceiling 0.704 [0.673, 0.731]; PGR 0.019 [-0.159, 0.180]")
    undefined = {"value": None, "ci_low": None, "ci_high": None, "reason": "ceiling does not beat weak"}
    assert _w2s_result(undefined).summary_line().endswith("; PGR n/a (ceiling does not beat weak)")


def test_a_pillar_without_a_formatter_summarises_its_headline_numbers() -> None:
    result = RunResult(Path("runs/new-x"), {}, True, 0.0, {"acc": 0.71234, "model": "m"}, "new")
    assert result.summary_line() == "acc 0.712; model m"
    assert math.isclose(result.wall_s, 0.0) and result.config == {} and result.timings == {}
