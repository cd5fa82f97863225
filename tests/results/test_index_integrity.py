"""runs/index.sqlite is only an index: a damaged or unwritable one is rebuilt or bypassed, never fatal."""

import errno
import os
import sqlite3
from pathlib import Path

import pytest

from overseer.cli.main import main
from overseer.results import index_run, is_finished, list_runs, start_run
from overseer.results._index import INDEX_NAME

EST = {"value": 0.7, "ci_low": 0.6, "ci_high": 0.8, "reason": None}


def _publish(runs: Path, x: int) -> Path:
    writer = start_run("toy", {"x": x}, runs)
    with writer:
        writer.finish({"acc": EST}, summary={"acc": x / 10})
    return writer.result.path


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_index_is_rebuilt_from_the_run_directories(
    tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [_publish(tmp_path, x) for x in range(40)]
    index = tmp_path / INDEX_NAME
    if damage == "garbage":
        index.write_bytes(b"this is not a database" * 50)
    else:
        data = index.read_bytes()
        index.write_bytes(data[: len(data) // 2])
    capsys.readouterr()

    frame = list_runs(tmp_path)
    assert sorted(frame["name"]) == sorted(p.name for p in paths)
    (warning,) = _warnings(capsys.readouterr().err)
    assert str(index) in warning and "rebuil" in warning
    assert sorted(list_runs(tmp_path)["name"]) == sorted(p.name for p in paths)  # the new index is whole
    assert _warnings(capsys.readouterr().err) == []


def test_publishing_into_a_damaged_index_rebuilds_it_and_lists_the_new_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _publish(tmp_path, 1)
    (tmp_path / INDEX_NAME).write_bytes(b"garbage" * 100)
    second = _publish(tmp_path, 2)  # index_run meets the damaged file: no sqlite3.DatabaseError
    assert is_finished(second) and len(_warnings(capsys.readouterr().err)) == 1
    with sqlite3.connect(tmp_path / INDEX_NAME) as conn:
        assert {r[0] for r in conn.execute("SELECT name FROM runs")} == {first.name, second.name}


def test_a_failure_to_index_a_published_run_is_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(runs_dir: Path) -> sqlite3.Connection:
        raise sqlite3.OperationalError("database or disk is full")

    with monkeypatch.context() as patch:
        patch.setattr("overseer.results._index._connect", full)
        path = _publish(tmp_path, 1)
    assert is_finished(path)
    (warning,) = _warnings(capsys.readouterr().err)
    assert path.name in warning and "database or disk is full" in warning
    assert list(list_runs(tmp_path)["name"]) == [path.name]  # the index catches up from the directories


def test_a_full_disk_raised_as_os_error_while_indexing_is_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(runs_dir: Path) -> sqlite3.Connection:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("overseer.results._index._connect", full)
    index_run(tmp_path / "toy-abc", "toy", {}, {}, "2026-01-01")
    (warning,) = _warnings(capsys.readouterr().err)
    assert "toy-abc" in warning and "No space left on device" in warning


def test_an_index_that_cannot_be_opened_lists_the_directories_directly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [_publish(tmp_path, x) for x in (1, 2)]

    def read_only(runs_dir: Path) -> sqlite3.Connection:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr("overseer.results._index._connect", read_only)
    frame = list_runs(tmp_path, pillar="toy")
    assert sorted(frame["name"]) == sorted(p.name for p in paths) and set(frame["acc"]) == {0.1, 0.2}
    (warning,) = _warnings(capsys.readouterr().err)
    assert "readonly" in warning and str(tmp_path / INDEX_NAME) in warning


def test_overseer_runs_with_a_damaged_index_lists_the_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _publish(tmp_path, 3)
    (tmp_path / INDEX_NAME).write_bytes(b"\x00garbage" * 64)
    capsys.readouterr()
    assert main(["runs", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert path.name in captured.out and len(_warnings(captured.err)) == 1 and "Traceback" not in captured.err
