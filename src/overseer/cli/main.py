"""Entry point of the ``overseer`` command: dispatches to each pillar's sub-commands.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a function taking the parsed args. Library errors (:class:`OverseerError`) are
printed as one line and exit with status 2; Ctrl-C exits with 130 and writes no run.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from overseer import __version__
from overseer._progress import silence_library_bars
from overseer.errors import OverseerError


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every pillar's sub-commands."""
    from overseer.cli import cache, catalog, generate, runs, selfcorrect, w2s

    parser = argparse.ArgumentParser(
        prog="overseer", description="Scalable-oversight experiments on a laptop CPU or a GPU cluster."
    )
    parser.add_argument("--version", action="version", version=f"overseer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    w2s.register(sub)
    selfcorrect.register(sub)
    generate.register(sub)
    catalog.register(sub)
    runs.register(sub)
    cache.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    silence_library_bars()  # "Loading weights", "Writing model shards": our own bars say what is going on
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except OverseerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
