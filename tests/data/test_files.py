"""json_lines: the one reader of JSON lines behind data files, label files and training rows."""

from __future__ import annotations

import pytest

from overseer.data import json_lines
from overseer.errors import OverseerError


def test_json_lines_numbers_lines_from_one_and_skips_blank_ones():
    lines = ['{"a": 1}', "", "   ", "[1, 2]", '"text"']
    assert list(json_lines(lines, "f.jsonl")) == [(1, {"a": 1}), (4, [1, 2]), (5, "text")]


def test_json_lines_names_the_file_and_line_of_bad_json():
    with pytest.raises(OverseerError, match=r"^labels\.jsonl:3: not JSON \(Expecting value\)$"):
        list(json_lines(['{"a": 1}', "", "nope"], "labels.jsonl"))
    wording = "{where!r} line {line} is not valid JSON: {reason}"
    with pytest.raises(OverseerError, match=r"^'x\.jsonl' line 2 is not valid JSON: Expecting value$"):
        list(json_lines(["1", "nope"], "x.jsonl", wording))


def test_json_lines_reads_lazily_up_to_the_bad_line():
    read = json_lines(['{"ok": true}', "{bad"], "f")
    assert next(read) == (1, {"ok": True})
    with pytest.raises(OverseerError, match="f:2: not JSON"):
        next(read)


def test_shared_data_dir_follows_the_environment_variable(tmp_path, monkeypatch):
    from overseer.data import shared_data_dir

    monkeypatch.setenv("OVERSEER_DATA_DIR", str(tmp_path / "elsewhere"))
    assert shared_data_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("OVERSEER_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    (tmp_path.parent / "shared" / "data").mkdir(parents=True, exist_ok=True)
    assert shared_data_dir() == (tmp_path.parent / "shared" / "data").resolve()
