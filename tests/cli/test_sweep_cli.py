import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from overseer.cli.main import main
from overseer.w2s.jobs import JobStore

# (weak + ceiling) x 2 seeds + (student + noise-matched baseline) x 3 pairs x 2 methods x 2 seeds
N_JOBS = 2 * 2 + 2 * 2 + 3 * 2 * 2 * 2


def _config(path: Path, ladder: list[Path], **overrides) -> Path:
    cfg = {"name": "tiny", "ladder": [str(m) for m in ladder],
           "datasets": [{"name": "geo_facts", "args": {"limit": 600}}], "methods": ["xent", "logconf"],
           "seeds": [0, 1], "n_train": 120, "n_test": 100, "n_bootstrap": 100, "head": {"l2_grid": [1.0, 100.0]},
           "baseline_draws": 2, **overrides}
    path.write_text(yaml.safe_dump(cfg))
    return path


def _finished_jobs(store: JobStore) -> dict[str, int]:
    """Finished job key -> mtime (ns) of its job.json."""
    if not store.root.is_dir():
        return {}
    return {p.name: (p / "job.json").stat().st_mtime_ns for p in store.root.iterdir() if (p / "job.json").is_file()}


def test_killed_sweep_resumes_without_recomputing(tiny_encoder: Path, tiny_causal_right: Path, tiny_causal: Path,
                                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path / "sweep.yaml", [tiny_encoder, tiny_causal_right, tiny_causal])
    out = tmp_path / "runs"
    store = JobStore(out)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "overseer", "w2s", "sweep", "--config", str(config), "--out",
                             str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while len(store.computed()) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    before = _finished_jobs(store)
    assert 3 <= len(before) < N_JOBS  # killed halfway: some jobs finished, others not

    assert main(["w2s", "sweep", "--config", str(config), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{N_JOBS - len(before)} jobs computed, {len(before)} reused, 0 failed; 6 runs" in printed, printed
    after = _finished_jobs(store)
    assert len(after) == N_JOBS
    assert {k: after[k] for k in before} == before  # nothing finished was rewritten
    computed = store.computed()
    assert len(computed) == len(set(computed)) == N_JOBS  # every job computed exactly once over both processes
    summary = json.loads((out / "sweep-tiny" / "summary.json").read_text())
    assert summary["status"] == "complete" and len(summary["runs"]) == 6
    assert all((out / name / "metrics.json").is_file() for name in summary["runs"])

    assert main(["w2s", "report", str(out / "sweep-tiny")]) == 0
    report = out / "sweep-tiny" / "report"
    assert (report / "summary.md").read_text().count("| geo_facts |") == 2 + 6  # per-method rows + every pair


def test_failed_job_gives_exit_status_1_and_names_it(tiny_encoder: Path, tiny_causal: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from overseer.w2s.methods import w2s_method

    @w2s_method("test_cli_exploding")
    def _exploding():
        class Exploding:
            def train_student(self, ctx):
                raise ValueError("cli boom")

        return Exploding()

    config = _config(tmp_path / "s.yaml", [tiny_encoder, tiny_causal], methods=["xent", "test_cli_exploding"],
                     seeds=[0])
    assert main(["w2s", "sweep", "--config", str(config), "--out", str(tmp_path / "runs")]) == 1
    out = capsys.readouterr().out
    # the method's student and its noise-matched baseline both fail; the xent run finishes
    assert "2 failed; 1 runs" in out and "FAILED student" in out and "FAILED baseline" in out
    assert "ValueError: cli boom" in out


def test_bad_sweep_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("ladder: [minilm-l6, smollm2-135m]\nmethods: [magic]\n")
    assert main(["w2s", "sweep", "--config", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown method 'magic'" in err[0]


def test_ray_flag_parses_local_and_address() -> None:
    from overseer.cli.main import build_parser

    parse = build_parser().parse_args
    assert parse(["w2s", "sweep", "--config", "s.yaml"]).ray is None
    assert parse(["w2s", "sweep", "--config", "s.yaml", "--ray"]).ray == "local"
    assert parse(["w2s", "sweep", "--config", "s.yaml", "--ray", "ray://head:10001"]).ray == "ray://head:10001"


@pytest.mark.parametrize("name", ["x/../../../elsewhere", "..", "a/b"])
def test_a_sweep_name_with_a_separator_or_dots_is_refused_in_one_line_and_writes_nothing(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "cfg" / "s.yaml"
    config.parent.mkdir()
    config.write_text(yaml.safe_dump({"name": name, "ladder": ["minilm-l6", "smollm2-135m"]}))
    out = tmp_path / "a" / "b" / "runs"  # sweep-x/../../../elsewhere would land in tmp_path/a/elsewhere
    assert main(["w2s", "sweep", "--config", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: sweep name {name!r} is not allowed; use letters"), err
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["cfg", "cfg/s.yaml"]


def test_a_sweep_refused_for_a_bad_method_runs_under_the_same_name_once_fixed(
        tiny_encoder: Path, tiny_causal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "runs"
    too_small = {"datasets": [{"name": "geo_facts", "args": {"limit": 60}}]}  # n_train 120 does not fit
    for bad in ({"methods": ["magic"]}, {"datasets": ["no_such_dataset"]}, too_small):
        config = _config(tmp_path / "s.yaml", [tiny_encoder, tiny_causal], seeds=[0], **bad)
        assert main(["w2s", "sweep", "--config", str(config), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and ("unknown" in err[0] or "too small" in err[0]), err
        assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))
    config = _config(tmp_path / "s.yaml", [tiny_encoder, tiny_causal], seeds=[0], methods=["xent"])
    assert main(["w2s", "sweep", "--config", str(config), "--out", str(out)]) == 0
    assert "0 failed; 1 runs" in capsys.readouterr().out
