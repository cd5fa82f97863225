"""Two identical runs started at once: the second waits for the first and reuses its run."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from overseer.results import read_run, start_run

INDEX = "index.sqlite"
EST = {"value": 0.7, "ci_low": 0.6, "ci_high": 0.8, "reason": None}

# A fake pillar: start the run, "compute" (log a line, then hold until the test says go), publish.
_PILLAR = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from overseer.results import start_run

    runs, log, go = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    writer = start_run("toy", {"x": 1}, runs)
    if writer.existing:
        print("reused", writer.existing.path.name, writer.existing.metrics["acc"]["value"])
        sys.exit(0)
    with open(log, "a") as fh:
        fh.write("computing\\n")
    deadline = time.time() + 120
    while not go.exists() and time.time() < deadline:
        time.sleep(0.05)
    with writer:
        writer.finish({"acc": {"value": 0.7, "ci_low": 0.6, "ci_high": 0.8, "reason": None}}, summary={"acc": 0.7})
    print("computed", writer.result.path.name, writer.result.metrics["acc"]["value"])
""")


def _wait_for(predicate, what: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _start(tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path]:
    err = tmp_path / f"{name}.err"
    argv = [sys.executable, "-c", _PILLAR, str(tmp_path / "runs"), str(tmp_path / "computed.log"), str(tmp_path / "go")]
    with open(err, "w") as fh:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=fh, text=True)
    return proc, err


def test_the_second_of_two_identical_runs_waits_and_reuses_the_first(tmp_path: Path) -> None:
    log = tmp_path / "computed.log"
    procs = []
    try:
        first, _ = _start(tmp_path, "first")
        procs.append(first)
        _wait_for(log.is_file, "the first run to start computing")
        second, second_err = _start(tmp_path, "second")
        procs.append(second)
        _wait_for(lambda: "waiting for another process" in second_err.read_text(), "the second run to wait")
        (tmp_path / "go").touch()
        outs = [p.communicate(timeout=120)[0].split() for p in procs]
    finally:
        (tmp_path / "go").touch()
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert outs[0][0] == "computed" and outs[1][0] == "reused" and outs[0][1:] == outs[1][1:]
    assert log.read_text() == "computing\n"  # the run was computed once
    (line,) = second_err.read_text().splitlines()
    assert line == f"waiting for another process computing run {outs[0][1]}"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [INDEX, outs[0][1]]  # no lock file left


def test_a_lock_dies_with_its_process(tmp_path: Path) -> None:
    log = tmp_path / "computed.log"
    first, _ = _start(tmp_path, "first")
    try:
        _wait_for(log.is_file, "the first run to start computing")
    finally:
        os.kill(first.pid, signal.SIGKILL)  # killed while holding the run's lock
        first.wait(timeout=60)
    t0 = time.perf_counter()
    writer = start_run("toy", {"x": 1}, tmp_path / "runs")  # not blocked by the dead process
    assert writer.existing is None and time.perf_counter() - t0 < 10
    with writer:
        writer.finish({"acc": EST})
    assert read_run(writer.path).metrics["acc"] == EST


def test_a_run_left_unfinished_in_this_process_does_not_block_the_next_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    abandoned = start_run("toy", {"x": 2}, tmp_path)  # e.g. its pillar raised before writing anything
    again = start_run("toy", {"x": 2}, tmp_path)  # same process: no deadlock on our own lock
    with again:
        again.finish({"acc": EST})
    assert again.result.path == abandoned.path and "waiting" not in capsys.readouterr().err
    del abandoned
    assert start_run("toy", {"x": 2}, tmp_path).existing is not None
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".lock")] == []
