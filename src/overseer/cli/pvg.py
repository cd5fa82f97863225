"""``overseer pvg run`` and ``overseer pvg report``: flags (or YAML) → PVGConfig → :func:`overseer.pvg.run`."""

from __future__ import annotations

import argparse
from typing import Any

from overseer._config import LazyFlagsParser


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer pvg ...``."""
    top = sub.add_parser("pvg", help="prover-verifier games for legible solutions (Kirchner et al. 2024)")
    top_sub = top.add_subparsers(dest="pvg_command", required=True, metavar="COMMAND", parser_class=LazyFlagsParser)
    p = top_sub.add_parser(
        "run",
        help="play the game: rounds of verifier training, then prover RL against it",
        description="Python equivalent: overseer.pvg.run(PVGConfig(...)). Defaults: the CPU toy tier (digit chains "
        "mod 10, tiny prover and verifier, 5 rounds of SRC, correctness-only baseline, one SRC attacker per round).",
        add_config_flags=_add_run_flags,
    )
    p.set_defaults(func=run_command)
    r = top_sub.add_parser("report", help="per-round table of finished games",
                           description="Python equivalent: overseer.pvg.report.write_report([...], out=...)")
    r.add_argument("runs", nargs="+", help="pvg run directories")
    r.add_argument("--out", help="also write <out>/report.md")
    r.set_defaults(func=report_command)


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    from overseer._config import add_flags
    from overseer.pvg.config import PVGConfig

    p.add_argument("--config", help="YAML file of PVGConfig options; flags override it")
    p.add_argument("--force", action="store_true", help="recompute even if this exact run is finished")
    add_flags(p, PVGConfig)


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`PVGConfig` that the ``--config`` file, then the flags, describe."""
    from overseer._config import flag_values, from_sources
    from overseer.pvg.config import PVGConfig

    return from_sources(PVGConfig, args.config, flag_values(PVGConfig, args))


def run_command(args: argparse.Namespace) -> int:
    """Check names, then play the game; print the headline and the run path."""
    cfg = config_from_args(args)
    from overseer.pvg.run import run  # checks names and paths before loading anything

    result = run(cfg, force=args.force)
    if result.reused:
        print("finished run found with this exact config; reusing it (--force to recompute)")
    print(result.summary_line())
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
