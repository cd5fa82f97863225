"""Entry point of the ``overseer`` command: dispatches to each pillar's sub-commands.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a function taking the parsed args. Library errors (:class:`OverseerError`), usage
errors (an unknown flag, a bad choice) and a missing optional package (named with the extra that
provides it) are printed as one line and exit with status 2;
Ctrl-C exits with 130 and writes no run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
from collections.abc import Sequence

from overseer import __version__
from overseer._progress import silence_library_bars
from overseer.errors import OverseerError, missing_package


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every pillar's sub-commands."""
    from overseer.cli import audit, cache, catalog, generate, guard, organisms, pvg, runs, selfcorrect, w2s

    parser = argparse.ArgumentParser(
        prog="overseer", description="Scalable-oversight experiments on a laptop CPU or a GPU cluster."
    )
    parser.add_argument("--version", action="version", version=f"overseer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    w2s.register(sub)
    selfcorrect.register(sub)
    pvg.register(sub)
    audit.register(sub)
    organisms.register(sub)
    guard.register(sub)
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
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = _parse(parser, words)  # parsing may import a command's modules, and so an optional package
        if args is None:
            return 2
        return int(args.func(args) or 0)
    except OverseerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional extra that is not installed: name the extra
        error = missing_package(exc, _command(parser, words))
        if error is None:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was kept", file=sys.stderr)
        return 130


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace | None:
    """The parsed arguments; a usage error (unknown flag, bad choice, missing value) is one ``error:`` line.

    argparse would print the whole usage block before its message; here the message alone is
    printed, with where to look (``see: overseer w2s run --help``), and None is returned (exit 2).
    ``--help`` and ``--version`` exit as usual.
    """
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            args = parser.parse_args(argv)
    except SystemExit as exc:
        text = captured.getvalue()
        lines = [line for line in text.splitlines() if line.strip()]
        if exc.code in (0, None) or not lines:
            sys.stderr.write(text)
            raise
        _, found, message = lines[-1].partition(": error: ")
        hint = f" (see: {_command(parser, sys.argv[1:] if argv is None else argv)} --help)"
        print(f"error: {message}{hint}" if found else f"error: {lines[-1]}", file=sys.stderr)
        return None
    sys.stderr.write(captured.getvalue())  # whatever else was printed while parsing is kept
    return args


def _command(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str:
    """The deepest command that ``argv`` starts with (``overseer w2s run``), for pointing at its help."""
    for token in argv:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or token not in sub.choices:
            break
        parser = sub.choices[token]
    return parser.prog


if __name__ == "__main__":
    sys.exit(main())
