"""The job store verifies each record on read, survives a full disk, and computes a job once across processes."""

import errno
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from overseer.w2s.config import W2SConfig
from overseer.w2s.jobs import Job, JobStore

OUTPUTS = {"weak_label": np.linspace(0, 1, 7), "test": np.linspace(1, 0, 5)}


def _job(seed: int = 0) -> Job:
    return Job("weak", W2SConfig(weak="org/weak", strong="org/strong"), seed, "fingerprint")


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


def test_a_saved_job_records_the_size_and_checksum_of_its_outputs(tmp_path: Path) -> None:
    job = _job()
    path = JobStore(tmp_path).save(job, OUTPUTS, 1.5)
    record = json.loads((path / "job.json").read_text())
    assert record["outputs"]["bytes"] == (path / "outputs.npz").stat().st_size
    assert len(record["outputs"]["sha256"]) == 64
    fresh = JobStore(tmp_path)
    assert fresh.has(job.key) and fresh.seconds(job.key) == 1.5
    np.testing.assert_array_equal(fresh.load(job.key)["test"], OUTPUTS["test"])


@pytest.mark.parametrize("damage", ["truncate outputs", "flip outputs", "truncate record", "no outputs"])
def test_a_damaged_job_is_reported_in_one_line_and_computed_again(
    tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job()
    path = JobStore(tmp_path).save(job, OUTPUTS, 1.0)
    outputs, record = path / "outputs.npz", path / "job.json"
    if damage == "truncate outputs":
        outputs.write_bytes(outputs.read_bytes()[:50])
    elif damage == "flip outputs":
        data = outputs.read_bytes()
        outputs.write_bytes(data[:200] + bytes([data[200] ^ 0xFF]) + data[201:])
    elif damage == "truncate record":
        record.write_text(record.read_text()[:20])
    else:
        outputs.unlink()
    capsys.readouterr()

    store = JobStore(tmp_path)
    assert not store.has(job.key)
    (warning,) = _warnings(capsys.readouterr().err)
    assert job.key in warning and str(path) in warning and "recomput" in warning
    assert not path.exists()  # the damaged record is removed, so the next run does not trip over it

    got, computed = store.load_or_compute(job, lambda: OUTPUTS)
    assert computed and store.has(job.key) and JobStore(tmp_path).has(job.key)
    assert store.computed() == [job.key, job.key]  # computed again, once


def test_a_job_from_an_older_version_without_checksum_loads_when_it_is_whole(tmp_path: Path) -> None:
    job = _job()
    path = JobStore(tmp_path).save(job, OUTPUTS, 1.0)
    record = json.loads((path / "job.json").read_text())
    del record["outputs"]
    (path / "job.json").write_text(json.dumps(record))
    store = JobStore(tmp_path)
    assert store.has(job.key)
    np.testing.assert_array_equal(store.load(job.key)["weak_label"], OUTPUTS["weak_label"])

    (path / "outputs.npz").write_bytes((path / "outputs.npz").read_bytes()[:60])
    assert not JobStore(tmp_path).has(job.key)


def test_a_full_disk_while_saving_a_job_warns_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(file: object, **arrays: object) -> None:
        Path(file).write_bytes(b"PK\x03\x04 half a zip")  # type: ignore[arg-type]
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("overseer.w2s.jobs.np.savez", full)
    job = _job()
    store = JobStore(tmp_path)
    store.save(job, OUTPUTS, 1.0)  # no exception: the job store only saves work for later
    (warning,) = _warnings(capsys.readouterr().err)
    assert "No space left on device" in warning and str(tmp_path / ".jobs") in warning
    assert [p.name for p in (tmp_path / ".jobs").iterdir() if not p.name.endswith(".lock")] == []
    assert store.has(job.key) and not JobStore(tmp_path).has(job.key)  # kept in memory only
    np.testing.assert_array_equal(store.load(job.key)["test"], OUTPUTS["test"])


_WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    from overseer.w2s.config import W2SConfig
    from overseer.w2s.jobs import Job, JobStore

    runs, log, go = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    job = Job("weak", W2SConfig(weak="org/weak", strong="org/strong"), 0, "fingerprint")

    def compute():
        with open(log, "a") as fh:
            fh.write("computing\\n")
        deadline = time.time() + 120
        while not go.exists() and time.time() < deadline:  # hold the job until the test lets go
            time.sleep(0.05)
        return {"weak_label": np.arange(3.0), "test": np.arange(2.0)}

    outputs, computed = JobStore(runs).load_or_compute(job, compute)
    print("computed" if computed else "loaded", outputs["weak_label"].tolist())
""")


def _wait_for(predicate, what: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_job_another_process_is_computing_is_waited_for_then_loaded(tmp_path: Path) -> None:
    runs, log, go = tmp_path / "runs", tmp_path / "computed.log", tmp_path / "go"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    argv = [sys.executable, "-c", _WORKER, str(runs), str(log), str(go)]
    errs = [tmp_path / "first.err", tmp_path / "second.err"]
    with open(errs[0], "w") as e0:
        first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=e0, text=True, env=env)
    try:
        _wait_for(lambda: log.is_file(), "the first process to start computing")
        with open(errs[1], "w") as e1:
            second = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=e1, text=True, env=env)
        _wait_for(lambda: "waiting for another process" in errs[1].read_text(), "the second process to wait")
        go.touch()
        outs = [first.communicate(timeout=180)[0], second.communicate(timeout=180)[0]]
    finally:
        go.touch()
        for proc in (first, locals().get("second")):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert outs == ["computed [0.0, 1.0, 2.0]\n", "loaded [0.0, 1.0, 2.0]\n"], [e.read_text() for e in errs]
    assert log.read_text() == "computing\n"  # computed once in all
    (waiting,) = [line for line in errs[1].read_text().splitlines() if line.strip()]
    assert waiting.startswith("waiting for another process computing job weak-")
    assert JobStore(runs).computed() == [_job().key]
    assert not list((runs / ".jobs").glob("*.lock"))  # the lock file goes with the lock


def test_outputs_computed_elsewhere_are_saved_under_the_lock_a_local_computation_holds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Ray sweep's driver saves through :meth:`JobStore.save_once`: it waits for a process computing the
    same job, then keeps that process's record instead of writing a second one."""
    import threading

    runs, log, go = tmp_path / "runs", tmp_path / "computed.log", tmp_path / "go"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    local = subprocess.Popen([sys.executable, "-c", _WORKER, str(runs), str(log), str(go)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, env=env)
    saved: list[bool] = []
    try:
        _wait_for(lambda: log.is_file(), "the local process to start computing")
        store = JobStore(runs)
        driver = threading.Thread(target=lambda: saved.append(store.save_once(_job(), OUTPUTS, 2.0)))
        driver.start()
        time.sleep(1.0)
        assert driver.is_alive() and not saved  # waiting on the lock, not writing beside the local process
        go.touch()
        driver.join(timeout=180)
        assert local.communicate(timeout=180)[0] == "computed [0.0, 1.0, 2.0]\n"
    finally:
        go.touch()
        if local.poll() is None:
            local.kill()
    assert saved == [False]
    np.testing.assert_array_equal(JobStore(runs).load(_job().key)["weak_label"], np.arange(3.0))  # the local record
    assert JobStore(runs).computed() == [_job().key]
    assert "waiting for another process computing job weak-" in capsys.readouterr().err
    other = JobStore(tmp_path / "elsewhere")
    assert other.save_once(_job(), OUTPUTS, 2.0) and not other.save_once(_job(), OUTPUTS, 3.0)
    assert JobStore(tmp_path / "elsewhere").seconds(_job().key) == 2.0


def test_a_full_disk_just_after_a_run_is_published_is_one_warning(
    tiny_encoder: Path, tiny_causal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from overseer.results import is_finished
    from overseer.w2s import HeadConfig, run

    def full(file: object, **arrays: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    cfg = W2SConfig(dataset="geo_facts", dataset_args={"limit": 600}, weak=str(tiny_encoder), strong=str(tiny_causal),
                    n_train=120, n_test=100, head=HeadConfig(l2_grid=(1.0,)), n_bootstrap=100, seeds=(0,),
                    baseline_draws=1)
    monkeypatch.setattr("overseer.w2s.jobs.np.savez", full)  # the run's jobs are stored after it is published
    result = run(cfg, out=tmp_path / "runs")
    assert is_finished(result.path) and not result.reused
    (warning,) = _warnings(capsys.readouterr().err)
    assert "No space left on device" in warning
    assert [p.name for p in (tmp_path / "runs" / ".jobs").iterdir()] == []
