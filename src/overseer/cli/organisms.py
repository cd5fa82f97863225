"""``overseer organisms ...``: flags (or YAML) → config → :mod:`overseer.organisms`."""

from __future__ import annotations

import argparse

from overseer._config import LazyFlagsParser


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer organisms ...``."""
    top = sub.add_parser("organisms", help="model organisms and evaluations of unprompted behaviours")
    top_sub = top.add_subparsers(dest="organisms_command", required=True, metavar="COMMAND",
                                 parser_class=LazyFlagsParser)
    p = top_sub.add_parser(
        "alignment-faking", help="compliance gap between trained-on and unmonitored users (Greenblatt et al. 2024)",
        description="Python equivalent: overseer.organisms.faking.run(FakingConfig(...)). Default: SmolLM2-135M "
        "judged by a log-probability judge on itself (a plumbing check, not a finding).",
        add_config_flags=_add_flags,
    )
    p.set_defaults(func=faking_command)


def _add_flags(p: argparse.ArgumentParser) -> None:
    from overseer._config import add_flags
    from overseer.organisms.faking import FakingConfig

    p.add_argument("--config", help="YAML file of FakingConfig options; flags override it")
    p.add_argument("--force", action="store_true", help="recompute even if this exact evaluation is finished")
    add_flags(p, FakingConfig)


def faking_command(args: argparse.Namespace) -> int:
    """Run the evaluation; print the headline and where it is."""
    from overseer._config import flag_values, from_sources
    from overseer.organisms.faking import FakingConfig, run

    result = run(from_sources(FakingConfig, args.config, flag_values(FakingConfig, args)), force=args.force)
    if result.reused:
        print("finished evaluation found with this exact config; reusing it (--force to recompute)")
    print(result.summary_line())
    print(f"run: {result.path}")
    print(f"rollouts and transcripts: {result.record['audit_run']}")
    return 0
