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


def check_known(kind: str, given: Iterable[str], allowed: Iterable[str]) -> None:
    """Refuse names in ``given`` that are not ``allowed``: the 'unknown X' error for the first, in sorted order.

    Used where keyword arguments become a config (``--learner-arg`` options, a saved config's
    fields), so a misspelt key is one line that lists the known ones instead of a TypeError.
    """
    allowed = list(allowed)
    extra = sorted(set(given) - set(allowed))
    if extra:
        raise unknown(kind, extra[0], allowed)


def missing_package(exc: ModuleNotFoundError, command: str) -> OverseerError | None:
    """The one-line error for a package that a command imports but this installation lacks.

    Which extra provides it is read from the installed package's own metadata (the
    ``Requires-Dist`` lines that ``pyproject.toml`` became), so the advice names the extra to
    install. None when the missing module is not one of Overseer's requirements: that is a bug,
    and its traceback is kept.
    """
    import importlib.metadata as metadata
    import re

    top = (exc.name or "").split(".")[0]
    if not top:
        return None
    wanted = re.sub(r"[-_.]+", "-", top).lower()
    try:
        requirements = metadata.requires("overseer") or []
    except metadata.PackageNotFoundError:
        return None
    extras: list[str] = []
    core = False
    for line in requirements:
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if name is None or re.sub(r"[-_.]+", "-", name.group(1)).lower() != wanted:
            continue
        extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", line)
        if extra:
            extras.append(extra.group(1))
        else:
            core = True
    if core:
        return OverseerError(f"{command} needs the package {wanted!r}, which this installation lacks; reinstall "
                             'Overseer: pip install -e "."')
    if not extras:
        return None
    extra = next((e for e in extras if e != "test"), extras[0])
    return OverseerError(f"{command} needs the optional package {wanted!r}, which is not installed: "
                         f'pip install -e ".[{extra}]"')
