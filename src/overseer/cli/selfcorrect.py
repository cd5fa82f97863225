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


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer selfcorrect ...``."""
    top_sub = command_group(sub, "selfcorrect",
                            "moral self-correction: BBQ, Winogender, law school (Ganguli et al. 2023)")
    SELFCORRECT_RUN.add_parser(top_sub, run_command)


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
