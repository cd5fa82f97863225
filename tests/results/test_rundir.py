import json
import os
import shutil
import subprocess
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


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


def test_versions_record_overseers_commit_the_torch_build_and_the_hardware(tmp_path: Path) -> None:
    import torch

    from overseer.results import _rundir

    with RunWriter("w2s", {"x": 5}, tmp_path) as run:
        run.write_json("metrics.json", {})
    versions = json.loads((run.path / "versions.json").read_text())
    source = Path(_rundir.__file__).parent
    head = _git(source, "rev-parse", "HEAD")  # the tests run from a clone
    assert versions["overseer_git"]["commit"] == head and len(head) == 40
    assert versions["overseer_git"]["dirty"] is bool(_git(source, "status", "--porcelain", "--untracked-files=no"))
    assert versions["torch_build"] == {"version": torch.__version__, "cuda": torch.version.cuda or "cpu",
                                       "cudnn": torch.backends.cudnn.version(), "threads": torch.get_num_threads()}
    hardware = versions["hardware"]
    assert hardware["cpu"] and hardware["cpu_count"] == os.cpu_count()
    assert 1 <= hardware["cpus_usable"] <= os.cpu_count() and hardware["memory_gib"] > 0
    if shutil.which("nvidia-smi") is None:  # else it lists every GPU of the machine, whatever torch sees
        assert hardware["gpu_count"] == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    if hardware["gpus"] is not None:
        assert len(hardware["gpus"]) == len(hardware["gpu_memory_gib"]) == hardware["gpu_count"]


def test_git_state_is_the_checkout_that_tracks_the_folder_and_none_elsewhere(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from overseer.results._rundir import git_state

    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "a.py").write_text("x = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "one")
    assert git_state(repo / "pkg") == {"commit": _git(repo, "rev-parse", "HEAD"), "dirty": False}
    (repo / "pkg" / "a.py").write_text("x = 2\n")
    assert git_state(repo / "pkg")["dirty"] is True
    (repo / "venv").mkdir()  # an untracked folder inside someone's repository: not Overseer's checkout
    assert git_state(repo / "venv") is None
    assert git_state(tmp_path) is None  # no repository at all
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))  # git is not installed
    assert git_state(repo / "pkg") is None


def test_versions_without_git_or_torch_still_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from overseer.results import _rundir, versions

    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # a run that never imported torch
    _rundir._overseer_git.cache_clear()
    try:
        found = versions()
    finally:
        _rundir._overseer_git.cache_clear()  # the next test sees the real checkout again
    assert found["overseer_git"] is None and found["torch_build"] is None and found["python"]
    assert found["hardware"]["gpu_count"] is None and found["hardware"]["cpu_count"] == os.cpu_count()
    assert "torch" not in sys.modules  # versions() never imports it


def test_lock_state_names_each_package_installed_at_another_version(tmp_path: Path) -> None:
    from importlib import metadata

    from overseer.results._rundir import lock_state

    numpy = metadata.version("numpy")
    lock = tmp_path / "lock.txt"
    lock.write_text(f"# a comment==1\nnumpy=={numpy}\npytest==0.0.1\nno-such-package-here==1.0\n"
                    f"torch=={metadata.version('torch').split('+')[0]}+cpu\n")
    state = lock_state(lock)
    assert state["differs"] == [f"pytest: 0.0.1 -> {metadata.version('pytest')}",
                                "no-such-package-here: 1.0 -> missing"]
    assert len(state["sha256"]) == 16 and state["path"] == str(lock)
    assert lock_state(tmp_path / "absent.txt") is None
