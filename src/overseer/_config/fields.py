"""Declaring a config field: its default, help text, flag name, choices and what it changes."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

IDENTITY_SCOPES = ("work", "report", "none")
"""What a field changes: ``work`` what is computed (trained, sampled, judged), ``report`` only the
analysis of finished work (intervals, thresholds), ``none`` nothing in the results (where and how
fast it runs, where it is written, what is printed)."""


def option(default: Any, help: str, *, flag: str | None = None, aliases: Sequence[str] = (),
           choices: Sequence[str] | None = None, metavar: str | None = None, identity: str = "work") -> Any:
    """A documented config field with its default; the help text doubles as the flag's ``--help``.

    Declared as ``lr: float = option(1e-3, "learning rate")``.

    Args:
        default: the default value; dicts, lists and dataclass instances are copied per instance.
        help: what the field does (the flag's help; Markdown backticks are fine).
        flag: the flag's name instead of ``--<name-with-dashes>`` (e.g. ``--model`` for ``models``).
        aliases: more names for the same flag (older spellings keep working).
        choices: the allowed values, checked with a one-line error (YAML and flags alike).
        metavar: how the value is shown in ``--help``.
        identity: what the field changes (:data:`IDENTITY_SCOPES`): ``work`` and ``report`` fields make
            the run's identity (its directory's hash), ``work`` fields alone the identity of the
            expensive work that runs differing only in reporting share; ``none`` fields neither.
    """
    if identity not in IDENTITY_SCOPES:
        raise ValueError(f"identity must be one of {', '.join(IDENTITY_SCOPES)}; got {identity!r}")
    metadata = {"help": help, "flag": flag, "aliases": tuple(aliases), "choices": tuple(choices) if choices else None,
                "metavar": metavar, "identity": identity}
    if isinstance(default, dict | list | set) or (dataclasses.is_dataclass(default) and not isinstance(default, type)):
        return dataclasses.field(default_factory=functools.partial(_copy, default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def runs_dir_option() -> Any:
    """``runs_dir`` (``--out``): where run directories go, which is no part of a run's identity."""
    return option(None, "where run directories go (default ./runs)", flag="--out", aliases=("--runs-dir",),
                  identity="none")


def progress_option(help: str = "print progress lines") -> Any:
    """``progress``: whether the run says how far it is (as ``help`` says), which changes no result."""
    return option(True, help, identity="none")


def bootstrap_option(help: str = "bootstrap resamples of each interval") -> Any:
    """Bootstrap resamples (1000) of the intervals, which change only the report of finished work."""
    return option(1000, help, identity="report")


def in_flight_option(what: str) -> Any:
    """``max_in_flight``: how many of ``what`` run at once (4), which changes how fast, not what."""
    return option(4, f"{what} run concurrently", identity="none")


def _copy(value: Any) -> Any:
    import copy

    return copy.deepcopy(value)


def init_fields(cls: type) -> list[dataclasses.Field[Any]]:
    """The fields of the config ``cls`` that its constructor takes."""
    return [f for f in dataclasses.fields(cls) if f.init]
