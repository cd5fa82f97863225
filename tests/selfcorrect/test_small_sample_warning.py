"""``overseer selfcorrect run`` on a small sample (``--limit 5``) says in one line that its intervals mean little."""

from __future__ import annotations

from pathlib import Path

import pytest

from overseer.cli.main import main
from overseer.results import RunResult


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


def test_a_limited_run_prints_one_warning_line(tiny_lm_dir: Path, tiny_data_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["selfcorrect", "run", "--model", str(tiny_lm_dir), "--data-dir", str(tiny_data_dir), "--out",
            str(tmp_path), "--no-progress", "--suite", "winogender,law", "--conditions", "q", "--limit", "3",
            "--n-bootstrap", "20"]
    for _ in range(2):  # the finished run, reused, still warns: its intervals are the same
        assert main(argv) == 0
        warned = _warnings(capsys.readouterr().err)
        assert warned == ["warning: only 3 winogender, 3 law items: intervals from fewer than 30 items per suite "
                          "are not meaningful (a quick look, not a result)"]


@pytest.mark.parametrize(("n_items", "expected"), [({"bbq": 480, "winogender": 60, "law": 200}, 0),
                                                   ({"bbq": 480, "winogender": 29}, 1)])
def test_only_suites_under_30_items_warn(n_items: dict[str, int], expected: int, tiny_data_dir: Path,
                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import overseer.selfcorrect

    def fake_run(cfg, force=False):
        return RunResult(tmp_path, {}, False, 1.0, {}, "selfcorrect", {"n_items": n_items})

    monkeypatch.setattr(overseer.selfcorrect, "run", fake_run)
    assert main(["selfcorrect", "run", "--model", "mock", "--data-dir", str(tiny_data_dir), "--out",
                 str(tmp_path)]) == 0
    warned = _warnings(capsys.readouterr().err)
    assert len(warned) == expected
    if expected:
        assert "29 winogender items" in warned[0] and "bbq" not in warned[0]
