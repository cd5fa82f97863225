"""Atomic writes, the JSON policy and resumable work folders of ``overseer._storage``."""

from __future__ import annotations

import errno
import json
import math
from pathlib import Path

import numpy as np
import pytest

from overseer._storage import (
    WorkDir,
    atomic_directory,
    atomic_file,
    atomic_write_bytes,
    atomic_write_text,
    jsonable,
    publish_directory,
    remove_directory,
    write_json,
)
from overseer.results import read_run, start_run


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# -- atomic files ------------------------------------------------------------------------------------

def test_atomic_write_text_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")
    atomic_write_text(path, "new ✓")
    assert path.read_text() == "new ✓"
    assert _names(tmp_path) == {"out.txt"}


def test_a_write_that_fails_half_way_leaves_the_old_file_and_no_temporary(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"old contents")

    def disk_full_half_way(self: Path, data: bytes) -> int:
        with open(self, "wb") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full_half_way)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(path, b"0123456789" * 100)
    monkeypatch.undo()
    assert path.read_bytes() == b"old contents"
    assert _names(tmp_path) == {"out.bin"}


def test_atomic_file_interrupted_while_writing_publishes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "table.parquet"
    with pytest.raises(KeyboardInterrupt), atomic_file(path) as tmp:
        tmp.write_text("half a ta")
        raise KeyboardInterrupt
    assert not path.exists()
    assert _names(tmp_path) == set()


def test_atomic_file_writes_through_a_hidden_name_beside_the_target(tmp_path: Path) -> None:
    path = tmp_path / "figure.png"
    with atomic_file(path) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".figure.png.tmp-")
        assert not path.exists()  # nothing visible until the writer is done
        tmp.write_bytes(b"png")
    assert path.read_bytes() == b"png" and _names(tmp_path) == {"figure.png"}


# -- atomic directories ------------------------------------------------------------------------------

def test_atomic_directory_failure_leaves_nothing_visible(tmp_path: Path) -> None:
    final = tmp_path / "player"
    with pytest.raises(RuntimeError), atomic_directory(final) as staging:
        (staging / "weights.bin").write_bytes(b"half")
        raise RuntimeError("training diverged")
    assert _names(tmp_path) == set()


def test_atomic_directory_failure_keeps_the_existing_folder(tmp_path: Path) -> None:
    final = tmp_path / "player"
    final.mkdir()
    (final / "weights.bin").write_bytes(b"good")
    with pytest.raises(RuntimeError), atomic_directory(final) as staging:
        (staging / "weights.bin").write_bytes(b"half")
        raise RuntimeError
    assert _names(tmp_path) == {"player"} and (final / "weights.bin").read_bytes() == b"good"


def test_atomic_directory_replaces_the_whole_old_folder(tmp_path: Path) -> None:
    final = tmp_path / "player"
    final.mkdir()
    (final / "stale.bin").write_bytes(b"old")
    with atomic_directory(final) as staging:
        assert staging.is_dir() and not any(staging.iterdir())
        (staging / "weights.bin").write_bytes(b"new")
    assert _names(final) == {"weights.bin"}
    assert _names(tmp_path) == {"player"}  # neither the staging folder nor the old one is left


def test_atomic_directory_clears_what_a_killed_process_left_in_its_staging_folder(tmp_path: Path) -> None:
    final = tmp_path / "seeds"
    staging_name = tmp_path / "custom.tmp"
    staging_name.mkdir()
    (staging_name / "leftover.md").write_text("from a killed run")
    with atomic_directory(final, staging=staging_name) as staging:
        assert staging == staging_name and not any(staging.iterdir())
        (staging / "a.md").write_text("a")
    assert _names(final) == {"a.md"} and not staging_name.exists()


def test_publish_directory_keeps_a_folder_another_process_published_first(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import overseer._storage as storage

    final, staging = tmp_path / "job", tmp_path / ".job.tmp"
    staging.mkdir()
    (staging / "ours").write_text("ours")
    real_replace = storage.os.replace

    def theirs_first(src: Path, dst: Path) -> None:
        if Path(src) == staging:  # the other process renamed its copy in between
            final.mkdir()
            (final / "theirs").write_text("theirs")
        real_replace(src, dst)

    monkeypatch.setattr(storage.os, "replace", theirs_first)
    publish_directory(staging, final)
    assert _names(final) == {"theirs"} and not staging.exists()


def test_remove_directory_deletes_and_ignores_a_missing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "job"
    (folder / "sub").mkdir(parents=True)
    remove_directory(folder, aside=".job.damaged")
    remove_directory(folder)
    assert _names(tmp_path) == set()


# -- JSON --------------------------------------------------------------------------------------------

def test_write_json_writes_nan_and_infinity_as_null_in_strict_json(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    write_json(path, {"nan": float("nan"), "inf": [math.inf, -math.inf], "np": np.float32(0.5),
                      "int": np.int64(3), "path": Path("a/b"), "tuple": (1, 2), 7: "key"})

    def refuse(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    assert json.loads(path.read_text(), parse_constant=refuse) == {
        "nan": None, "inf": [None, None], "np": 0.5, "int": 3, "path": "a/b", "tuple": [1, 2], "7": "key"}
    assert path.read_text().endswith("}\n")


def test_jsonable_keeps_finite_values_exactly() -> None:
    values = {"a": 0.1 + 0.2, "b": np.float64(1 / 3), "c": [np.int32(-4), True, None, "x"]}
    assert json.dumps(jsonable(values)) == json.dumps({"a": 0.1 + 0.2, "b": 1 / 3, "c": [-4, True, None, "x"]})


def test_nan_in_a_run_reads_back_as_none_through_the_results_reader(tmp_path: Path) -> None:
    writer = start_run("toy", {"x": 1}, tmp_path)
    with writer:
        write_json(writer.file("extra.json"), {"auroc": float("nan")})
        writer.finish({"acc": 0.5, "auroc": float("nan"), "ratio": math.inf}, timings={})
    again = read_run(writer.result.path)
    assert again.metrics == {"acc": 0.5, "auroc": None, "ratio": None}
    assert again.metrics == writer.result.metrics  # a reused run gets what the fresh one returned
    assert json.loads((again.path / "extra.json").read_text()) == {"auroc": None}


# -- resumable work folders ----------------------------------------------------------------------------

def test_work_dir_is_a_hidden_folder_beside_the_runs_and_is_created_on_entry(tmp_path: Path) -> None:
    work = WorkDir(tmp_path, "poison-1a2b", waiting_for="another run")
    assert work.path == tmp_path / ".poison-1a2b.work" and not work.path.exists()
    with work as entered:
        assert entered is work and work.path.is_dir()
        assert (tmp_path / ".poison-1a2b.work.lock").is_file()  # held while the run uses the folder
    assert not (tmp_path / ".poison-1a2b.work.lock").exists()


def test_work_dir_reuses_a_finished_unit_and_redoes_an_interrupted_one(tmp_path: Path) -> None:
    calls: list[str] = []

    def compute(name: str, value: float) -> dict[str, float]:
        calls.append(name)
        return {"ppl": value}

    with WorkDir(tmp_path, "w") as work:
        assert math.isnan(work.json_unit("records/a.json", lambda: compute("a", float("nan")))["ppl"])

    def killed() -> dict[str, float]:
        calls.append("b")
        raise KeyboardInterrupt  # the process dies while computing unit b

    with pytest.raises(KeyboardInterrupt), WorkDir(tmp_path, "w") as work:
        work.json_unit("records/b.json", killed)
    assert sorted(p.name for p in (tmp_path / ".w.work" / "records").iterdir()) == ["a.json"]

    with WorkDir(tmp_path, "w") as work:  # the resumed run
        a = work.json_unit("records/a.json", lambda: compute("a", 1.0))
        b = work.json_unit("records/b.json", lambda: compute("b", 2.0))
    assert calls == ["a", "b", "b"]  # a was reused, b redone
    assert math.isnan(a["ppl"]) and b == {"ppl": 2.0}  # NaN in a work unit reads back as NaN

    with WorkDir(tmp_path, "w") as work:
        assert work.json_unit("records/a.json", lambda: compute("a", 3.0), redo=True) == {"ppl": 3.0}
        assert work.json_unit("records/a.json", lambda: compute("a", 4.0)) == {"ppl": 3.0}
    assert calls == ["a", "b", "b", "a"]


def test_publishing_over_a_folder_set_aside_by_a_killed_process_of_the_same_id_still_replaces_it(
        tmp_path: Path) -> None:
    import os

    final = tmp_path / "classifier"
    final.mkdir()
    (final / "old").write_text("old")
    stale = tmp_path / f".classifier.old-{os.getpid()}"
    stale.mkdir()
    (stale / "x").write_text("the aside copy of a process that was killed before deleting it")
    with atomic_directory(final) as staging:
        (staging / "new").write_text("new")
    assert _names(final) == {"new"} and _names(tmp_path) == {"classifier"}


def test_a_report_goes_to_out_report_md_and_an_unusable_out_is_one_line(tmp_path: Path) -> None:
    from overseer._storage import write_report_file
    from overseer.errors import OverseerError

    assert write_report_file("| a |\n", None) is None
    written = write_report_file("| a |\n", tmp_path / "new" / "folder")
    assert written == tmp_path / "new" / "folder" / "report.md" and written.read_text() == "| a |\n"
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OverseerError) as info:
        write_report_file("| a |\n", blocker / "sub")
    assert "cannot write the report to --out" in str(info.value) and "\n" not in str(info.value)
