import json
import os
from pathlib import Path

import pytest

from overseer.errors import OverseerError
from overseer.results import RunWriter, config_hash, is_finished, list_runs, run_path


def test_same_config_same_directory_and_key_order_does_not_matter(tmp_path: Path) -> None:
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    assert run_path("w2s", {"a": 1}, tmp_path).name.startswith("w2s-")


def test_run_is_published_only_when_finished(tmp_path: Path) -> None:
    with RunWriter("w2s", {"x": 1}, tmp_path) as run:
        run.write_json("metrics.json", {"acc": 0.5})
        assert not run.path.exists()  # nothing visible while the run is in progress
    assert is_finished(run.path)
    config = json.loads((run.path / "config.json").read_text())
    assert config["config"] == {"x": 1}
    versions = json.loads((run.path / "versions.json").read_text())
    assert versions["torch"] and versions["python"]


def test_only_rank_zero_of_a_multi_process_job_publishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")  # as torchrun and accelerate launch set it
    with RunWriter("w2s", {"x": 1}, tmp_path) as run:
        run.write_json("metrics.json", {"acc": 0.5})
    assert list(tmp_path.iterdir()) == []  # rank 1 leaves no run and no temporary directory
    monkeypatch.setenv("RANK", "0")
    with RunWriter("w2s", {"x": 1}, tmp_path) as run:
        run.write_json("metrics.json", {"acc": 0.5})
    assert is_finished(run.path)


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_interrupted_run_leaves_nothing_behind(tmp_path: Path, error: type[BaseException]) -> None:
    with pytest.raises(error):
        with RunWriter("w2s", {"x": 2}, tmp_path) as run:
            run.write_json("metrics.json", {"acc": 0.5})
            raise error()
    assert list(tmp_path.iterdir()) == []


def test_full_disk_is_a_one_line_error_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(OverseerError, match="could not finish writing the run: No space left"):
        with RunWriter("w2s", {"x": 3}, tmp_path) as run:
            raise OSError(28, os.strerror(28))
    assert not run.path.exists() and not run.tmp.exists()


def test_run_without_metrics_is_not_published(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="without writing metrics.json"):
        with RunWriter("w2s", {"x": 4}, tmp_path):
            pass
    assert list(tmp_path.iterdir()) == []


def test_index_lists_runs_and_forgets_deleted_ones(tmp_path: Path) -> None:
    import shutil

    paths = []
    for x in (1, 2):
        with RunWriter("w2s", {"x": x}, tmp_path) as run:
            run.write_json("summary.json", {"created": f"2026-01-0{x}", "pgr": x / 10})
            run.write_json("metrics.json", {})
        paths.append(run.path)
    frame = list_runs(tmp_path)
    assert sorted(frame["name"]) == sorted(p.name for p in paths)
    assert set(frame["pgr"]) == {0.1, 0.2}
    shutil.rmtree(paths[0])
    assert list(list_runs(tmp_path)["name"]) == [paths[1].name]
