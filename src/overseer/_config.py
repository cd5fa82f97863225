"""Config dataclasses that make their own CLI flags and YAML keys, with one-line type errors.

A config is a frozen dataclass whose fields are declared with :func:`option` (a default and a help
string, as TRL's ``field(metadata={"help": ...})``). From the fields alone this module

* adds one argparse flag per field (:func:`add_flags`): ``n_train`` becomes ``--n-train``; the type
  comes from the annotation (``bool`` gives ``--x/--no-x``, a tuple takes several values, also
  comma-separated, ``dict`` fields take repeated ``--method-arg KEY=VALUE``), and a nested
  dataclass such as ``head: HeadConfig`` gives ``--head-lr``, ``--head-epochs``, ...;
* builds the dataclass from a YAML mapping (:func:`from_mapping`), refusing unknown keys with the
  allowed ones and wrong types with one line that names the field, the expected type and the value
  (``head.lr must be a number; got 'fast'``);
* merges a YAML file and then the flags given (:func:`from_sources`): flags override the file.

Adding a field to a config is one line: ``lr: float = option(1e-3, "learning rate")``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from overseer._yaml import read_yaml
from overseer.errors import OverseerError

T = TypeVar("T")
_MISSING = dataclasses.MISSING
_NONE_WORDS = ("none", "null")
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


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


def _copy(value: Any) -> Any:
    import copy

    return copy.deepcopy(value)


# --------------------------------------------------------------------------- types


@functools.cache
def _hints(owner: Any) -> dict[str, Any]:
    """Resolved annotations of a dataclass or function (``from __future__ import annotations`` safe)."""
    try:
        return typing.get_type_hints(owner)
    except Exception:  # an annotation that does not resolve here is not checked
        return {}


def _union_members(annotation: Any) -> tuple[Any, ...] | None:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return typing.get_args(annotation)
    return None


def _sequence_item(annotation: Any) -> tuple[Any, Any] | None:
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


def _is_mapping_type(annotation: Any) -> bool:
    return annotation in (dict, Mapping) or typing.get_origin(annotation) in (dict, Mapping)


def describe(annotation: Any) -> str:
    """How a type reads in an error message: ``a number``, ``an integer or null``, ``a list of integers``."""
    members = _union_members(annotation)
    if members is not None:
        return " or ".join(describe(m) for m in members)
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(annotation))
    item = _sequence_item(annotation)
    if item is not None:
        inner = describe(item[0])
        return "a list" if item[0] is Any else "a list of " + inner.removeprefix("an ").removeprefix("a ") + "s"
    if _is_mapping_type(annotation):
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
    members = _union_members(annotation)
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
    item = _sequence_item(annotation)
    if item is not None:
        item_type, container = item
        if container is Sequence:
            container = tuple if isinstance(value, tuple) else list
        if not isinstance(value, list | tuple):
            value = [value]  # one seed for a list of seeds
        if text or item_type is str:  # "q,if" and `--seeds 0,1` as well as `--seeds 0 1`
            value = [part.strip() for v in value for part in (v.split(",") if isinstance(v, str) else [v])]
            value = [v for v in value if v != ""]
        items = [_coerce(v, item_type, text) for v in value]
        return tuple(items) if container is tuple else items
    if _is_mapping_type(annotation):
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
    hints = _hints(fn)
    out = {}
    for key, value in kwargs.items():
        if key not in allowed and not takes_any:
            known = ", ".join(sorted(allowed)) or "(none)"
            raise OverseerError(f"unknown {name} key {key!r} for {what}; allowed: {known}")
        out[key] = check(value, hints[key], f"{name}.{key}") if key in hints else value
    return out


# --------------------------------------------------------------------------- YAML and mappings


def _fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if f.init]


def from_mapping(cls: type[T], data: Any, *, name: str = "") -> T:
    """Build the config ``cls`` from a mapping (a YAML file's content), checking keys and types.

    Args:
        cls: a config dataclass.
        data: ``{field: value}``; nested dataclass fields take mappings of their own fields.
        name: the dotted path of this config inside another (``head``), for messages.

    Raises:
        OverseerError: an unknown key (with the allowed ones), a value of the wrong type, a value
            not among a field's choices, or whatever the config's own checks refuse.
    """
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise OverseerError(f"{name or 'config'} must be a mapping of options; got {type(data).__name__}")
    fields = {f.name: f for f in _fields(cls)}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        raise OverseerError(f"unknown {name or 'config'} option {unknown[0]!r}; allowed: {', '.join(sorted(fields))}")
    hints = _hints(cls)
    kwargs = {}
    for key, value in data.items():
        path = f"{name}.{key}" if name else key
        annotation = hints.get(key, Any)
        if dataclasses.is_dataclass(annotation):
            kwargs[key] = from_mapping(annotation, {} if value is None else value, name=path)
            continue
        kwargs[key] = _check_choice(fields[key], check(value, annotation, path), path)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a check the annotation could not express
        raise OverseerError(f"invalid {name or 'config'}: {exc}") from exc


def _check_choice(f: dataclasses.Field[Any], value: Any, name: str) -> Any:
    choices = f.metadata.get("choices")
    if choices and value is not None and value not in choices:
        raise OverseerError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def check_choices(config: Any) -> None:
    """Refuse, in one line, a field of ``config`` whose value is not among its ``choices``."""
    for f in _fields(type(config)):
        _check_choice(f, getattr(config, f.name), f.name)


def merge(base: Mapping[str, Any], *layers: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with each layer on top; mappings (nested configs, ``method_args``) merge key by key."""
    out = dict(base)
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
                out[key] = merge(out[key], value)
            else:
                out[key] = value
    return out


def from_sources(cls: type[T], config_file: str | Path | None = None, *layers: Mapping[str, Any]) -> T:
    """The config ``cls`` from a YAML file (if any), then each layer of values on top (flags last)."""
    data = read_yaml(config_file, "config file") if config_file else {}
    if not isinstance(data, Mapping):
        raise OverseerError(f"config file {str(config_file)!r} must be a mapping of options; got {type(data).__name__}")
    return from_mapping(cls, merge(data, *layers))


def comma_names(value: Any) -> tuple[str, ...]:
    """Names given as ``"a,b"`` or a sequence, stripped, empties dropped: what a ``tuple[str, ...]`` field holds.

    Flags and YAML are split this way by :func:`check`; config classes call it in ``__post_init__`` so that
    building one in Python (``AuditConfig(targets="a,b")``) gives the same value.
    """
    if isinstance(value, str):
        value = value.split(",")
    return tuple(str(v).strip() for v in value if str(v).strip())


class ConfigMixin:
    """Building and saving for config dataclasses: ``from_dict``, ``from_yaml``, ``to_dict``."""

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        """Build from a mapping (a YAML file's content); unknown keys and wrong types are one-line errors."""
        return from_mapping(cls, data)

    @classmethod
    def from_yaml(cls: type[T], path: str | Path) -> T:
        """Load a YAML config file."""
        return from_sources(cls, path)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        return _plain(dataclasses.asdict(self))  # type: ignore[call-overload]

    def identity(self, scope: str = "report") -> dict[str, Any]:
        """The fields that change results, as plain JSON: what a run directory's hash covers.

        ``scope="report"`` (the run): every field declared ``work`` or ``report``; ``scope="work"``:
        the ``work`` fields alone, so that runs differing only in how finished work is analysed share
        that work. Nested configs contribute their own identity. Which scope a field belongs to is
        declared once, beside its default (``option(..., identity=...)``); nothing else lists it.
        """
        if scope not in ("work", "report"):
            raise ValueError(f"scope must be work or report; got {scope!r}")
        wanted = ("work",) if scope == "work" else ("work", "report")
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.metadata.get("identity", "work") not in wanted:
                continue
            value = getattr(self, f.name)
            out[f.name] = value.identity(scope) if isinstance(value, ConfigMixin) else _plain(
                dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------- flags


def _base_type(annotation: Any) -> Any:
    members = _union_members(annotation)
    if members is not None:
        rest = [m for m in members if m is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _metavar(annotation: Any) -> str:
    base = _base_type(annotation)
    item = _sequence_item(base)
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
    hints = _hints(cls)
    group: Any = parser.add_argument_group(f"{prefix.rstrip('.')} options", description) if prefix else parser
    for f in _fields(cls):
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
        elif _is_mapping_type(base):
            if not meta.get("flag") and f.name.endswith("_args"):
                names = list(dict.fromkeys(["--" + dest.replace(".", "-").replace("_", "-")[:-1], *names[1:]]))
            group.add_argument(*names, dest=dest, action="append", default=None, metavar="KEY=VALUE",
                               help=f"{help_text} (one KEY=VALUE per flag, values in YAML; repeatable)")
        else:
            choices = meta.get("choices")
            metavar = meta.get("metavar") or ("{" + ",".join(choices) + "}" if choices else _metavar(annotation))
            nargs = "*" if _sequence_item(base) is not None else None  # no values: an empty list
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
    hints = _hints(cls)
    given = vars(args)
    out: dict[str, Any] = {}
    for f in _fields(cls):
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
        if _is_mapping_type(_base_type(annotation)):
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
