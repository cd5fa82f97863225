"""``benchmarks/reproduce_readme.py``: the README's figures are found, their commands are real, mismatches are named.

The script itself reruns half an hour of experiments and is run by hand; here its reading of the
README and its comparison are tested, on the real README and on hand-made blocks.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path

from overseer.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("reproduce_readme", REPO / "benchmarks" / "reproduce_readme.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["reproduce_readme"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


reproduce = _load_script()


def test_the_readme_marks_the_figures_of_every_default_command() -> None:
    blocks = reproduce.read_blocks((REPO / "README.md").read_text())
    commands = {b.command for b in blocks}
    for wanted in ("overseer w2s run", "overseer w2s run --weak noise:0.2", "overseer audit run",
                   "overseer pvg run && overseer pvg report {run}"):
        assert wanted in commands
    parser = build_parser()
    for block in blocks:
        assert block.lines and all(line.strip() for line in block.lines)
        for step in block.command.split("&&"):
            words = shlex.split(step.replace("{run}", "runs/pvg-000000000000"))
            assert words[0] == "overseer"
            parser.parse_args(words[1:])  # a README command the CLI does not take fails here


def test_a_block_matches_when_its_lines_are_printed_in_order() -> None:
    readme = ("text\n<!-- reproduce: overseer w2s run -->\n```\nPGR 0.291 [0.114, 0.423]\nrun  pvg-0123456789ab\n"
              "```\n\n<!-- reproduce: overseer pvg run -->\n| 1 | 0.5 |\n| 2 | 0.6 |\n\nafter\n")
    first, second = reproduce.read_blocks(readme)
    assert first.lines == ["PGR 0.291 [0.114, 0.423]", "run  pvg-0123456789ab"] and first.line_no == 2
    assert second.lines == ["| 1 | 0.5 |", "| 2 | 0.6 |"]
    printed = "progress\nPGR 0.291  [0.114, 0.423]\nother\nrun pvg-ffffffffffff\n"
    assert reproduce.compare(first, printed) == []  # spacing and the run's hash aside
    (problem,) = reproduce.compare(first, printed.replace("0.291", "0.290"))
    assert "README:  PGR 0.291 [0.114, 0.423]" in problem and "printed: PGR 0.290 [0.114, 0.423]" in problem
    assert len(reproduce.compare(second, "| 2 | 0.6 |\n| 1 | 0.5 |\n")) == 1  # out of order
    assert len(reproduce.compare(second, "")) == 2
