"""One registry for every named, pluggable component (models, datasets, methods, ...).

A component is registered under a kind and a name with :func:`register`; :func:`lookup`
finds it or raises an :class:`~overseer.errors.OverseerError` that lists what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from overseer.errors import unknown

RegistryKind = Literal[
    "model", "dataset", "sample_dataset", "w2s_loss", "w2s_method", "w2s_learner", "suite", "condition",
    "pvg_reward", "pvg_task", "game_technique",
]

_REGISTRY: dict[str, dict[str, Any]] = {}
T = TypeVar("T")


def register(kind: RegistryKind, name: str) -> Callable[[T], T]:
    """Decorator: register ``obj`` as ``kind``/``name``; re-registering a name is an error."""

    def decorate(obj: T) -> T:
        table = _REGISTRY.setdefault(kind, {})
        if name in table and table[name] is not obj:
            raise ValueError(f"{kind} {name!r} is registered twice")
        table[name] = obj
        return obj

    return decorate


def lookup(kind: RegistryKind, name: str) -> Any:
    """Return the object registered as ``kind``/``name`` or raise a one-line error."""
    table = _REGISTRY.get(kind, {})
    if name not in table:
        raise unknown(kind.replace("_", " "), name, table)
    return table[name]


def names(kind: RegistryKind) -> list[str]:
    """All names registered under ``kind``, sorted."""
    return sorted(_REGISTRY.get(kind, {}))
