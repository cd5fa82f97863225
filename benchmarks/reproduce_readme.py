"""Rerun the README's measured commands on a fresh cache and compare what they print with the README.

Usage: python benchmarks/reproduce_readme.py [--only TEXT] [--cache DIR] [--keep] [--readme PATH]

Every figure in the README that a command prints stands in a block right after a marker line
``<!-- reproduce: COMMAND -->``: a fenced code block, or a Markdown table (the lines up to the
next blank line). COMMAND is one ``overseer ...`` command line, or several joined by ``&&``, in
which ``{run}`` stands for the run directory that the previous command printed (``run: PATH``).
Each command runs as a user would run it (the ``overseer`` CLI of this environment, in a new
working folder, with ``OVERSEER_CACHE_DIR`` pointing at an empty folder unless ``--cache`` is
given), once however many blocks quote it, one command at a time.

A block matches when each of its lines is printed by its command, in order (blank lines and
spacing aside; run directory names such as ``pvg-1a2b3c4d5e6f`` are compared as ``pvg-<hash>``).
Each mismatch is reported with the README's line and the closest printed line. Run it before
changing a README figure; the figures were measured in the environment of
``requirements/lock.txt`` (its digest is printed here). The whole set takes about 35 minutes on
2 CPU cores, which is why CI does not run it. The last line printed is one JSON object; the exit
status is 1 when any block does not match.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!--\s*reproduce:\s*(?P<command>.+?)\s*-->\s*$")
RUN_NAME = re.compile(r"\b([a-z0-9]+)-[0-9a-f]{12}\b")
RUN_LINE = re.compile(r"^run: (?P<path>\S+)\s*$", re.MULTILINE)


@dataclass
class Block:
    """The README lines that one command must print, and where they stand."""

    command: str
    lines: list[str]
    line_no: int
    problems: list[str] = field(default_factory=list)


def read_blocks(readme: str) -> list[Block]:
    """Every ``<!-- reproduce: ... -->`` block of the README, in order."""
    lines = readme.splitlines()
    blocks = []
    for i, line in enumerate(lines):
        found = MARKER.match(line.strip())
        if not found:
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        body: list[str] = []
        if j < len(lines) and lines[j].lstrip().startswith("```"):
            j += 1
            while j < len(lines) and not lines[j].lstrip().startswith("```"):
                body.append(lines[j])
                j += 1
        else:
            while j < len(lines) and lines[j].strip():
                body.append(lines[j])
                j += 1
        body = [b for b in body if b.strip()]
        if not body:
            raise SystemExit(f"README line {i + 1}: the reproduce marker has no block after it")
        blocks.append(Block(found.group("command"), body, i + 1))
    return blocks


def normalise(line: str) -> str:
    """A line as compared: run names without their hash, runs of spaces as one."""
    return " ".join(RUN_NAME.sub(r"\1-<hash>", line).split())


def compare(block: Block, printed: str) -> list[str]:
    """The README lines of ``block`` that ``printed`` does not show in order, each with the closest printed line."""
    out = [normalise(line) for line in printed.splitlines() if line.strip()]
    problems, at = [], 0
    for line in block.lines:
        want = normalise(line)
        try:
            at = out.index(want, at) + 1
        except ValueError:
            close = difflib.get_close_matches(want, out, n=1, cutoff=0.0)
            problems.append(f"README:  {want}\n    printed: {close[0] if close else '(nothing)'}")
    return problems


def run_command(command: str, workdir: Path, env: dict[str, str]) -> tuple[str, float]:
    """Run ``overseer ...`` steps joined by ``&&`` in ``workdir``; their stdout together, and the seconds taken."""
    printed, last_run, started = [], None, time.perf_counter()
    for step in (s.strip() for s in command.split("&&")):
        words = shlex.split(step)
        if not words or words[0] != "overseer":
            raise SystemExit(f"only overseer commands can be reproduced, not {step!r}")
        if "{run}" in step and last_run is None:
            raise SystemExit(f"{step!r} uses {{run}}, but no earlier step printed a 'run: PATH' line")
        words = [w.replace("{run}", last_run or "") for w in words]
        print(f"$ {' '.join(words)}", flush=True)
        done = subprocess.run([sys.executable, "-m", "overseer", *words[1:]], cwd=workdir, env=env,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            printed.append(f"(exit {done.returncode}) {tail}")
            break
        printed.append(done.stdout)
        found = RUN_LINE.findall(done.stdout)
        last_run = found[-1] if found else last_run
    return "\n".join(printed), time.perf_counter() - started


def main() -> int:
    """Run every block's command, report each mismatch, print the summary as JSON last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--only", help="only blocks whose command contains this text")
    parser.add_argument("--cache", type=Path, help="an existing OVERSEER_CACHE_DIR to reuse (default: a new one)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the working folder (runs, cache, and each command's output as output-NN.txt)")
    args = parser.parse_args()
    blocks = [b for b in read_blocks(args.readme.read_text()) if not args.only or args.only in b.command]
    if not blocks:
        print("no reproduce block matches", file=sys.stderr)
        return 2
    probe = subprocess.run([sys.executable, "-m", "overseer", "--version"], capture_output=True, text=True)
    if probe.returncode != 0:  # every command would fail the same way: say it once
        why = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"error: {sys.executable} cannot run overseer ({why}); run this script with the Python of the "
              "environment Overseer is installed in", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="overseer-reproduce-"))
    env = {**os.environ, "OVERSEER_CACHE_DIR": str(args.cache or work / "cache"), "PYTHONUNBUFFERED": "1"}
    lock = ROOT / "requirements" / "lock.txt"
    lock_digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:16] if lock.is_file() else None
    print(f"lock {lock_digest}; cache {env['OVERSEER_CACHE_DIR']}; working folder {work}", flush=True)
    outputs: dict[str, tuple[str, float]] = {}
    started = time.perf_counter()
    try:
        for block in blocks:
            if block.command not in outputs:
                outputs[block.command] = run_command(block.command, work, env)
                (work / f"output-{len(outputs):02d}.txt").write_text(f"$ {block.command}\n{outputs[block.command][0]}")
            printed, seconds = outputs[block.command]
            block.problems = compare(block, printed)
            verdict = "ok" if not block.problems else f"{len(block.problems)} mismatch(es)"
            print(f"README line {block.line_no}: {block.command} ({seconds:.0f} s): {verdict}", flush=True)
            for problem in block.problems:
                print(f"  {problem}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    mismatched = [b for b in blocks if b.problems]
    print(json.dumps({
        "blocks": len(blocks), "lines_checked": sum(len(b.lines) for b in blocks),
        "mismatched_blocks": len(mismatched), "mismatched_lines": sum(len(b.problems) for b in blocks),
        "commands": len(outputs), "seconds": round(time.perf_counter() - started), "lock_sha256": lock_digest,
    }))
    return 1 if mismatched else 0


if __name__ == "__main__":
    raise SystemExit(main())
