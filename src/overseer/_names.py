"""One check for every user-given name that becomes part of a path (sweep names, run names).

A name is a single path component: letters, digits, ``.``, ``_`` and ``-``, not starting with a
dot (so never ``.``, ``..`` or a hidden file), at most :data:`MAX_LENGTH` characters. It can
never contain a separator, so it can never point outside the folder it is joined to.
"""

from __future__ import annotations

import re
from typing import Any

from overseer.errors import OverseerError

MAX_LENGTH = 100
ALLOWED = f"letters, digits, '.', '_' and '-', not starting with '.', at most {MAX_LENGTH} characters"
"""The rule, in words, as error messages state it."""
_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def is_safe_name(value: Any) -> bool:
    """True when ``value`` is a string that :func:`safe_name` accepts."""
    return isinstance(value, str) and len(value) <= MAX_LENGTH and _PATTERN.fullmatch(value) is not None


def safe_name(value: Any, what: str) -> str:
    """``value`` itself when it is a safe single path component; otherwise a one-line OverseerError.

    Args:
        value: the user's name (a YAML value, a command-line argument).
        what: what the name is, for the message (``sweep name``, ``run name``).

    Raises:
        OverseerError: naming the value and the allowed characters.
    """
    if not is_safe_name(value):
        raise OverseerError(f"{what} {value!r} is not allowed; use {ALLOWED}")
    return value
