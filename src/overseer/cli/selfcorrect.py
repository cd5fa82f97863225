"""``overseer selfcorrect run``: flags (or a YAML config) → SelfCorrectConfig → :func:`overseer.selfcorrect.run`.

Every :class:`SelfCorrectConfig` field is a flag made from the field itself (``bbq_per_cell`` →
``--bbq-per-cell``; ``models`` → ``--model``, ``runs_dir`` → ``--out``), see :mod:`overseer._config`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from overseer.cli._config_command import ConfigCommand, command_group

MEANINGFUL_ITEMS = 30
"""Below this many items in a suite (``--limit 5``, a tiny ``--law-students``) its intervals say little."""

SELFCORRECT_RUN = ConfigCommand(
    "overseer.selfcorrect", "SelfCorrectConfig",
    help="evaluate models under the paper's prompting conditions",
    description="Python equivalent: overseer.selfcorrect.run(SelfCorrectConfig(models=..., suites=..., "
    "conditions=...)). Defaults: smollm2-135m, all suites, conditions q,if, the default sample.",
)


SELFCORRECT_AGREEMENT = ConfigCommand(
    "overseer.selfcorrect", "SelfCorrectConfig", command="agreement",
    help="compare first-token and sampled scoring with full log-prob scoring (local models)",
    description="Python equivalent: overseer.selfcorrect.agreement.scoring_agreement(SelfCorrectConfig(...)). "
    "Runs the configuration three times (--scoring full, first_token, sampled; each an ordinary reusable run; "
    "--scoring itself is ignored) and prints, per suite and condition, the correlation of per-prompt option "
    "probabilities with full scoring, how often the chosen option agrees, and the bias scores side by side.",
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer selfcorrect ...``."""
    top_sub = command_group(sub, "selfcorrect",
                            "moral self-correction: BBQ, Winogender, law school (Ganguli et al. 2023)")
    SELFCORRECT_RUN.add_parser(top_sub, run_command)
    SELFCORRECT_AGREEMENT.add_parser(top_sub, agreement_command, add_flags=_agreement_flags)


def _agreement_flags(parser: argparse.ArgumentParser) -> None:
    SELFCORRECT_AGREEMENT.add_flags(parser)
    parser.add_argument("--json-out", metavar="PATH", help="also write the agreement figures to this JSON file")


def agreement_command(args: argparse.Namespace) -> int:
    """Run the three scoring modes (reusing finished runs) and print how the cheaper two agree with full scoring."""
    from overseer.selfcorrect.checks import check_run

    cfg = SELFCORRECT_AGREEMENT.from_args(args)
    check_run(cfg)
    from overseer.selfcorrect.agreement import agreement_table, scoring_agreement

    found = scoring_agreement(cfg, force=args.force)
    print(agreement_table(found))
    for mode, path in found["runs"].items():
        print(f"run ({mode}): {path}")
    if args.json_out:
        from pathlib import Path

        from overseer._storage import write_json

        write_json(Path(args.json_out).expanduser(), found)
        print(f"agreement: {args.json_out}")
    return 0


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`SelfCorrectConfig` that the ``--config`` file, then the flags, describe."""
    return SELFCORRECT_RUN.from_args(args)


def run_command(args: argparse.Namespace) -> int:
    """Check the config's names and paths, then run the experiments; print headline numbers and the run path."""
    from overseer.selfcorrect.checks import check_run

    cfg = config_from_args(args)
    check_run(cfg)  # in a second, before any model, dataset or heavy library is loaded
    from overseer.selfcorrect import run

    result = run(cfg, force=args.force)
    SELFCORRECT_RUN.print_headline(result)
    small = {suite: n for suite, n in (result.record.get("n_items") or {}).items() if n < MEANINGFUL_ITEMS}
    if small:
        print(f"warning: only {', '.join(f'{n} {suite}' for suite, n in small.items())} items: intervals from "
              f"fewer than {MEANINGFUL_ITEMS} items per suite are not meaningful (a quick look, not a result)",
              file=sys.stderr)
    print(f"wall time {result.wall_s:.0f} s")
    print(f"run: {result.path}")
    return 0
