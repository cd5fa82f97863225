"""``overseer pvg run`` and ``overseer pvg report``: flags (or YAML) → PVGConfig → :func:`overseer.pvg.run`."""

from __future__ import annotations

import argparse

from overseer.cli._config_command import ConfigCommand, command_group

PVG_RUN = ConfigCommand(
    "overseer.pvg.config", "PVGConfig", runner="overseer.pvg.run",
    help="play the game: rounds of verifier training, then prover RL against it",
    description="Python equivalent: overseer.pvg.run(PVGConfig(...)). Defaults: the CPU toy tier (digit chains "
    "mod 10, tiny prover and verifier, 5 rounds of SRC, correctness-only baseline, one SRC attacker per round).",
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer pvg ...``."""
    top_sub = command_group(sub, "pvg", "prover-verifier games for legible solutions (Kirchner et al. 2024)")
    PVG_RUN.add_parser(top_sub, run_command)
    r = top_sub.add_parser("report", help="per-round table of finished games",
                           description="Python equivalent: overseer.pvg.report.write_report([...], out=...)")
    r.add_argument("runs", nargs="+", help="pvg run directories")
    r.add_argument("--out", help="also write <out>/report.md")
    r.set_defaults(func=report_command)


def run_command(args: argparse.Namespace) -> int:
    """Check names, then play the game; print the headline and the run path."""
    result = PVG_RUN.run(args)  # pvg's run checks names and paths before loading anything
    print(f"wall time {result.wall_s:.0f} s")
    print(f"run: {result.path}")
    print(f"report: overseer pvg report {result.path}")
    return 0


def report_command(args: argparse.Namespace) -> int:
    """Print the tables (and write report.md with --out)."""
    from overseer.pvg.report import write_report

    text, path = write_report(args.runs, out=args.out)
    print(text, end="")
    if path is not None:
        print(f"report: {path}")
    return 0
