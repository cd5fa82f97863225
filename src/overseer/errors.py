"""Errors that the CLI turns into one clean line instead of a traceback."""

from __future__ import annotations

from collections.abc import Iterable


class OverseerError(Exception):
    """A problem with the user's input or environment, explained in one line.

    The CLI prints ``error: <message>`` and exits with status 2; library callers can
    catch it like any exception. Messages name the bad value and what is allowed.
    """


def unknown(kind: str, value: object, allowed: Iterable[str], hint: str = "") -> OverseerError:
    """Build the standard 'unknown X' error that lists the allowed values."""
    allowed = sorted(allowed)
    msg = f"unknown {kind} {value!r}; allowed: {', '.join(allowed) if allowed else '(none)'}"
    return OverseerError(msg + (f" ({hint})" if hint else ""))
