"""``overseer guard run`` and ``overseer guard report`` from the command line; bad input exits 2 in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from overseer.cli.main import main


def test_guard_run_then_report_print_the_defence_table(guard_model: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["guard", "run", "--guarded-model", guard_model, "--classifier-model", guard_model, "--probe-layers", "1",
            "--train-per-category", "6", "--attack-requests", "2", "--benign-calibration", "6", "--benign-eval", "6",
            "--max-new-tokens", "6", "--transforms", "plain,rot13", "--adaptive", "", "--sweep-rates", "0,1",
            "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "attack success unguarded" in out and "guarded model spec: guard:" in out
    assert "| defence | attack success |" in out and "| cascade |" in out  # the run prints its defence table
    run_dir = next(tmp_path.glob("guard-*"))
    assert main(["guard", "report", str(run_dir), "--out", str(tmp_path / "report")]) == 0
    table = capsys.readouterr().out
    assert "| cascade |" in table and "| rot13 |" in table and (tmp_path / "report" / "report.md").is_file()


def test_guard_runs_are_listed_by_overseer_runs(guard_model: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["guard", "run", "--guarded-model", guard_model, "--classifier-model", guard_model, "--probe-layers", "1",
            "--train-per-category", "6", "--attack-requests", "2", "--benign-calibration", "6", "--benign-eval", "6",
            "--max-new-tokens", "6", "--transforms", "plain", "--adaptive", "", "--sweep-rates", "0,1",
            "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["runs", "--out", str(tmp_path), "--pillar", "guard"]) == 0
    assert "guard-" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--transforms", "rot14"], "unknown transformation 'rot14'"),
    (["--target-frr", "2"], "target_frr must be a share in [0, 1]; got 2"),
    (["--constitution", "nope"], "constitution 'nope' is neither a packaged one"),
    (["--guarded-model", "smolm2-135m"], "smolm2-135m"),
])
def test_bad_input_exits_2_with_one_line(argv: list[str], message: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["guard", "run", *argv, "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_report_of_a_folder_that_is_no_guard_run_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["guard", "report", str(tmp_path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_serve_refuses_a_folder_without_a_policy_in_one_line(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["guard", "serve", str(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds no guard policy" in err and len(err.splitlines()) == 1
