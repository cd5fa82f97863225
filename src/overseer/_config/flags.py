"""Argparse flags made from a config's fields, and the typed values of the flags given."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable, Sequence
from typing import Any

import yaml

from overseer._config.coerce import check, is_mapping_type, sequence_item, type_hints, union_members
from overseer._config.fields import init_fields
from overseer.errors import OverseerError

_MISSING = dataclasses.MISSING


def _base_type(annotation: Any) -> Any:
    members = union_members(annotation)
    if members is not None:
        rest = [m for m in members if m is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _metavar(annotation: Any) -> str:
    base = _base_type(annotation)
    item = sequence_item(base)
    if item is not None:
        base = item[0]
    if typing.get_origin(base) is typing.Literal:
        return "{" + ",".join(str(v) for v in typing.get_args(base)) + "}"
    return {int: "INT", float: "FLOAT"}.get(base, "TEXT")


def _default_text(f: dataclasses.Field[Any]) -> str:
    if f.default is not _MISSING:
        default = f.default
    elif f.default_factory is not _MISSING:
        default = f.default_factory()
    else:
        return ""
    if default is None or default == {} or default == () or default == []:
        return ""
    if isinstance(default, tuple | list):
        default = ",".join(map(str, default))
    return f" (default: {default})"


def add_flags(parser: argparse.ArgumentParser, cls: type, prefix: str = "", description: str | None = None) -> None:
    """Add one flag per field of the config ``cls`` (nested configs as ``--<field>-<subfield>``).

    Every flag defaults to None, so :func:`flag_values` sees only what was given. Argument
    destinations are the fields' dotted paths (``head.lr``).
    """
    hints = type_hints(cls)
    group: Any = parser.add_argument_group(f"{prefix.rstrip('.')} options", description) if prefix else parser
    for f in init_fields(cls):
        annotation = hints.get(f.name, str)
        dest = prefix + f.name
        if dataclasses.is_dataclass(annotation):
            add_flags(parser, annotation, prefix=f"{dest}.", description=f.metadata.get("help"))
            continue
        meta = f.metadata
        base = _base_type(annotation)
        flag = meta.get("flag") or "--" + dest.replace(".", "-").replace("_", "-")
        names = list(dict.fromkeys([flag, *meta.get("aliases", ())]))
        help_text = (meta.get("help") or "").replace("%", "%%")
        if base is bool:
            group.add_argument(*names, dest=dest, action=argparse.BooleanOptionalAction, default=None,
                               help=help_text + _default_text(f))
        elif is_mapping_type(base):
            if not meta.get("flag") and f.name.endswith("_args"):
                names = list(dict.fromkeys(["--" + dest.replace(".", "-").replace("_", "-")[:-1], *names[1:]]))
            group.add_argument(*names, dest=dest, action="append", default=None, metavar="KEY=VALUE",
                               help=f"{help_text} (one KEY=VALUE per flag, values in YAML; repeatable)")
        else:
            choices = meta.get("choices")
            metavar = meta.get("metavar") or ("{" + ",".join(choices) + "}" if choices else _metavar(annotation))
            nargs = "*" if sequence_item(base) is not None else None  # no values: an empty list
            group.add_argument(*names, dest=dest, default=None, nargs=nargs, metavar=metavar,
                               help=help_text + _default_text(f))


def _key_values(name: str, items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as a dict; values are YAML (numbers, booleans, lists)."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OverseerError(f"{name} value {item!r} is not KEY=VALUE")
        try:
            parsed[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed[key] = value
    return parsed


def flag_values(cls: type, args: argparse.Namespace, prefix: str = "") -> dict[str, Any]:
    """The values of the flags :func:`add_flags` made that were given, typed, nested like the config."""
    hints = type_hints(cls)
    given = vars(args)
    out: dict[str, Any] = {}
    for f in init_fields(cls):
        annotation = hints.get(f.name, str)
        dest = prefix + f.name
        if dataclasses.is_dataclass(annotation):
            nested = flag_values(annotation, args, prefix=f"{dest}.")
            if nested:
                out[f.name] = nested
            continue
        value = given.get(dest)
        if value is None:
            continue
        if is_mapping_type(_base_type(annotation)):
            out[f.name] = _key_values(dest, value)
        else:
            out[f.name] = check(value, annotation, dest, text=True)
    return out


class LazyFlagsParser(argparse.ArgumentParser):
    """An argparse parser that adds its config flags only when it is used.

    Config classes import their pillar (torch, transformers...); building every command's flags up
    front would make ``overseer --help`` or ``overseer models`` wait for all of them.
    Pass ``add_config_flags=callable(parser)`` to ``add_parser``.
    """

    def __init__(self, *args: Any, add_config_flags: Callable[[argparse.ArgumentParser], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._add_config_flags = add_config_flags

    def _ensure_flags(self) -> None:
        if self._add_config_flags is not None:
            add, self._add_config_flags = self._add_config_flags, None
            add(self)

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # noqa: D102
        self._ensure_flags()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:  # noqa: D102
        self._ensure_flags()
        return super().format_help()

    def format_usage(self) -> str:  # noqa: D102
        self._ensure_flags()
        return super().format_usage()
