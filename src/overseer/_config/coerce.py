"""Checking a value against a field's annotation, with one-line errors; strings from flags are parsed."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from overseer.errors import OverseerError

_NONE_WORDS = ("none", "null")
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


@functools.cache
def type_hints(owner: Any) -> dict[str, Any]:
    """Resolved annotations of a dataclass or function (``from __future__ import annotations`` safe)."""
    try:
        return typing.get_type_hints(owner)
    except Exception:  # an annotation that does not resolve here is not checked
        return {}


def union_members(annotation: Any) -> tuple[Any, ...] | None:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return typing.get_args(annotation)
    return None


def sequence_item(annotation: Any) -> tuple[Any, Any] | None:
    """``(item type, container)`` for ``tuple[X, ...]``, ``list[X]`` and ``Sequence[X]``; else None."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return args[0], tuple
    if origin is list:
        return (args[0] if args else Any), list
    if origin in (Sequence, typing.Sequence):
        return (args[0] if args else Any), Sequence  # a list stays a list, a tuple a tuple
    if annotation in (tuple, list):
        return Any, annotation
    return None


def is_mapping_type(annotation: Any) -> bool:
    return annotation in (dict, Mapping) or typing.get_origin(annotation) in (dict, Mapping)


def describe(annotation: Any) -> str:
    """How a type reads in an error message: ``a number``, ``an integer or null``, ``a list of integers``."""
    members = union_members(annotation)
    if members is not None:
        return " or ".join(describe(m) for m in members)
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(annotation))
    item = sequence_item(annotation)
    if item is not None:
        inner = describe(item[0])
        return "a list" if item[0] is Any else "a list of " + inner.removeprefix("an ").removeprefix("a ") + "s"
    if is_mapping_type(annotation):
        return "a mapping"
    if dataclasses.is_dataclass(annotation):
        return "a mapping of options"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null",
             Path: "a path"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


class _Mismatch(Exception):
    """A value that does not fit its annotation (turned into one OverseerError line by :func:`check`)."""


def _coerce(value: Any, annotation: Any, text: bool) -> Any:
    """``value`` as ``annotation`` (strings from the command line are parsed when ``text``), or _Mismatch."""
    if annotation is Any or annotation is object:
        return value
    members = union_members(annotation)
    if members is not None:
        if value is None and type(None) in members:
            return None
        if text and isinstance(value, str) and value.lower() in _NONE_WORDS and type(None) in members \
                and str not in members:
            return None
        for member in (m for m in members if m is not type(None)):
            try:
                return _coerce(value, member, text)
            except _Mismatch:
                continue
        raise _Mismatch
    if typing.get_origin(annotation) is typing.Literal:
        if value in typing.get_args(annotation):
            return value
        raise _Mismatch
    if annotation is type(None):
        if value is None:
            return None
        raise _Mismatch
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if text and isinstance(value, str) and value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
        raise _Mismatch
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if text and isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise _Mismatch from None
        raise _Mismatch
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value  # an int stays an int: the run's hash must not change with 1 -> 1.0
        if isinstance(value, str):  # YAML reads 1e-3 as a string; flags are strings
            try:
                return float(value)
            except ValueError:
                raise _Mismatch from None
        raise _Mismatch
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if annotation is Path:
        if isinstance(value, str | Path):
            return value
        raise _Mismatch
    item = sequence_item(annotation)
    if item is not None:
        item_type, container = item
        if container is Sequence:
            container = tuple if isinstance(value, tuple) else list
        # One string for a list of typed items is its comma-separated parts, read as text
        # (`poisoned: "0,50"` in YAML or Python as `--poisoned 0,50`); a list of anything keeps its string.
        listed = text or (isinstance(value, str) and item_type is not Any)
        if not isinstance(value, list | tuple):
            value = [value]  # one seed for a list of seeds
        if listed or item_type is str:  # "q,if" and `--seeds 0,1` as well as `--seeds 0 1`
            value = [part.strip() for v in value for part in (v.split(",") if isinstance(v, str) else [v])]
            value = [v for v in value if v != ""]
        items = [_coerce(v, item_type, listed) for v in value]
        return tuple(items) if container is tuple else items
    if is_mapping_type(annotation):
        if isinstance(value, Mapping):
            return dict(value)
        raise _Mismatch
    if isinstance(annotation, type) and not isinstance(value, annotation):
        raise _Mismatch
    return value


def check(value: Any, annotation: Any, name: str, *, text: bool = False) -> Any:
    """``value`` checked (and, for strings from flags, parsed) against ``annotation``.

    Raises:
        OverseerError: one line naming the field, the type it needs and the value it got.
    """
    try:
        return _coerce(value, annotation, text)
    except _Mismatch:
        raise OverseerError(f"{name} must be {describe(annotation)}; got {value!r}") from None


def check_kwargs(fn: Callable[..., Any], kwargs: Mapping[str, Any], name: str, what: str) -> dict[str, Any]:
    """Keyword arguments for ``fn`` checked against its signature: known names, right types.

    Strings are parsed where the parameter wants a number (``--method-arg aux_coef=0.5``); other
    values are returned unchanged.

    Args:
        fn: the function the arguments are for (e.g. a method factory).
        kwargs: the arguments.
        name: the field they come from, for messages (``method_args``).
        what: what ``fn`` is, for messages (``method 'logconf'``).
    """
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    allowed = [p.name for p in params.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    hints = type_hints(fn)
    out = {}
    for key, value in kwargs.items():
        if key not in allowed and not takes_any:
            known = ", ".join(sorted(allowed)) or "(none)"
            raise OverseerError(f"unknown {name} key {key!r} for {what}; allowed: {known}")
        out[key] = check(value, hints[key], f"{name}.{key}") if key in hints else value
    return out
