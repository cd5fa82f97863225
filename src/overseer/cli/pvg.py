"""``overseer pvg run`` and ``overseer pvg report``: flags (or YAML) → PVGConfig → :func:`overseer.pvg.run`."""

from __future__ import annotations

import argparse

from overseer._config import LazyFlagsParser
from overseer.cli._config_command import ConfigCommand

PVG_RUN = ConfigCommand("overseer.pvg.config", "PVGConfig")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer pvg ...``."""
    top = sub.add_parser("pvg", help="prover-verifier games for legible solutions (Kirchner et al. 2024)")
    top_sub = top.add_subparsers(dest="pvg_command", required=True, metavar="COMMAND", parser_class=LazyFlagsParser)
    p = top_sub.add_parser(
        "run",
        help="play the game: rounds of verifier training, then prover RL against it",
        description="Python equivalent: overseer.pvg.run(PVGConfig(...)). Defaults: the CPU toy tier (digit chains "
        "mod 10, tiny prover and verifier, 5 rounds of SRC, correctness-only baseline, one SRC attacker per round).",
        add_config_flags=PVG_RUN.add_flags,
    )
    p.set_defaults(func=run_command)
    r = top_sub.add_parser("report", help="per-round table of finished games",
                           description="Python equivalent: overseer.pvg.report.write_report([...], out=...)")
    r.add_argument("runs", nargs="+", help="pvg run directories")
    r.add_argument("--out", help="also write <out>/report.md")
    r.set_defaults(func=report_command)


def run_command(args: argparse.Namespace) -> int:
    """Check names, then play the game; print the headline and the run path."""
    cfg = PVG_RUN.from_args(args)
    from overseer.pvg.run import run  # checks names and paths before loading anything

    result = run(cfg, force=args.force)
    PVG_RUN.print_headline(result)
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
