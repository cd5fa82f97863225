"""``overseer audit``: bad input is one line and exit status 2, before any model loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from overseer.cli.main import main


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def test_bad_audit_inputs_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--out", str(tmp_path / "runs")]
    assert "unknown judge kind 'gpt'" in _fails(["audit", "run", "--judge", "gpt:x", *out], capsys)
    assert "unknown dimension 'flattery'" in _fails(["audit", "run", "--dimension-names", "flattery", *out], capsys)
    assert "unknown behaviour 'flattery'" in _fails(["audit", "elicit", "--behavior", "flattery", *out], capsys)
    assert "no seed has tag 'nope'" in _fails(["audit", "run", "--tags", "nope", *out], capsys)
    bad = tmp_path / "bad.md"
    bad.write_text("---\ntags: [x\n---\nBody.\n")
    assert f"{bad}:3: invalid YAML front matter" in _fails(["audit", "run", "--seeds", str(bad), *out], capsys)
    unscripted = tmp_path / "free.md"
    unscripted.write_text("Probe the target.\n")
    assert "has no scripted turns; give an auditor model" in _fails(["audit", "run", "--seeds", str(unscripted),
                                                                      "--auditor", "scripted", *out], capsys)
    assert "unknown role 'critic' in prices" in _fails(["audit", "run", "--prices", "critic=1/2", *out], capsys)
    assert "budget_usd needs prices" in _fails(["audit", "run", "--budget-usd", "1", *out], capsys)
    assert "threshold must be a number in 1-10" in _fails(["audit", "run", "--threshold", "11", *out], capsys)
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"scenario": "a", "dimension": "nope", "score": 3}\n')
    assert "labels.jsonl:1: unknown dimension 'nope'" in _fails(["audit", "run", "--labels", str(labels), *out],
                                                               capsys)
    assert not (tmp_path / "runs").exists()  # nothing was written
