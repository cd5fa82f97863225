"""The plumbing every pillar's ``run``-style command shares: config flags, the config, the reuse line.

Each such command takes its options from one config dataclass: ``--config FILE``, ``--force`` and
one flag per field; the file is read first and the flags override it; a finished run with the same
config is reused unless ``--force`` says otherwise, and the command says so before its headline.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from overseer._config import LazyFlagsParser


def command_group(sub: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    """``overseer NAME COMMAND``: a group of commands whose config flags are added when used."""
    group = sub.add_parser(name, help=help)
    return group.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND", parser_class=LazyFlagsParser)


@dataclass(frozen=True)
class ConfigCommand:
    """A command whose options are the config class ``module.name``, imported only when needed.

    Building the parser for ``overseer --help`` must import no pillar, so the class is named, not
    passed. ``thing`` is what the command finishes (``run``, ``audit``, ``organism``) and ``redo``
    what ``--force`` does to it (``recompute``, ``retrain``), as its help and reuse line say.
    ``runner`` is the module whose ``run(config, force=...)`` :meth:`run` calls (default: ``module``).
    ``command`` is its word in its group (``overseer organisms implant``), ``help`` its line in the
    group's ``--help`` and ``description`` the top of its own, which names its Python equivalent.
    """

    module: str
    name: str
    thing: str = "run"
    redo: str = "recompute"
    runner: str = ""
    command: str = "run"
    help: str = field(kw_only=True)
    description: str = field(kw_only=True)

    def config_class(self) -> type:
        """The config dataclass (imports its pillar)."""
        return getattr(importlib.import_module(self.module), self.name)

    def add_parser(self, sub: argparse._SubParsersAction, func: Callable[[argparse.Namespace], int],
                   add_flags: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.ArgumentParser:
        """Add the command to ``sub`` (a :class:`~overseer._config.LazyFlagsParser` group), handled by ``func``.

        Its flags (:meth:`add_flags`, or ``add_flags`` where the command has more) are added when the
        command is used, so ``overseer --help`` imports no pillar.
        """
        parser = sub.add_parser(self.command, help=self.help, description=self.description,
                                add_config_flags=add_flags or self.add_flags)
        parser.set_defaults(func=func)
        return parser

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        """``--config``, ``--force``, then one flag per config field: pass as ``add_config_flags``."""
        from overseer._config import add_flags

        parser.add_argument("--config", help=f"YAML file of {self.name} options; flags override it")
        parser.add_argument("--force", action="store_true", help=f"{self.redo} even if this exact {self.thing} is "
                            "finished")
        add_flags(parser, self.config_class())

    def from_args(self, args: argparse.Namespace, *layers: Mapping[str, Any]) -> Any:
        """The config the ``--config`` file, then each of ``layers``, then the field flags describe."""
        from overseer._config import flag_values, from_sources

        cls = self.config_class()
        return from_sources(cls, args.config, *layers, flag_values(cls, args))

    def run(self, args: argparse.Namespace, **kwargs: Any) -> Any:
        """The config from ``args``, run by ``runner.run(config, force=args.force, **kwargs)``; prints the headline."""
        config = self.from_args(args)
        run = importlib.import_module(self.runner or self.module).run  # its checks come before any heavy loading
        result = run(config, force=args.force, **kwargs)
        self.print_headline(result)
        return result

    def print_reused(self, result: Any) -> None:
        """Say that a finished result was reused, if it was."""
        if result.reused:
            print(f"finished {self.thing} found with this exact config; reusing it (--force to {self.redo})")

    def print_headline(self, result: Any) -> None:
        """The reuse line, if any, then the result's one-line summary."""
        self.print_reused(result)
        print(result.summary_line())
