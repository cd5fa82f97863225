"""Building a config from mappings: a YAML file, then layers of values on top (flags last)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from overseer._config.coerce import check, type_hints
from overseer._config.fields import init_fields
from overseer._yaml import read_yaml
from overseer.errors import OverseerError

T = TypeVar("T")


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
    fields = {f.name: f for f in init_fields(cls)}
    unknown = sorted(set(data) - set(fields), key=str)
    renamed = [key for key in unknown if key in getattr(cls, "RENAMED", {})]
    if renamed:  # a config may name options it no longer has, and what replaced them
        raise OverseerError(f"{name or 'config'} option {renamed[0]!r} {cls.RENAMED[renamed[0]]}")  # type: ignore[attr-defined]
    if unknown:
        raise OverseerError(f"unknown {name or 'config'} option {unknown[0]!r}; allowed: {', '.join(sorted(fields))}")
    hints = type_hints(cls)
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


def check_fields(config: Any) -> None:
    """Check every field of the dataclass ``config`` against its annotation and ``choices``, in place.

    The same checks as :func:`from_mapping`, with the same one-line errors, for a config built in
    Python. Values are only coerced where :func:`check` coerces a YAML value (``"5e-5"`` to a number,
    a list to a tuple, one seed to a list of one, a mapping to a nested config): a value that already
    fits is kept as it is, so an ``int`` in a ``float`` field stays an ``int`` and run hashes do not move.

    Raises:
        OverseerError: one line naming the field, the type or choices it needs and the value it got.
    """
    cls = type(config)
    hints = type_hints(cls)
    for f in init_fields(cls):
        if f.name not in hints:
            continue
        value = getattr(config, f.name)
        annotation = hints[f.name]
        if dataclasses.is_dataclass(annotation) and isinstance(value, Mapping):
            checked = from_mapping(annotation, value, name=f.name)
        else:
            checked = _check_choice(f, check(value, annotation, f.name), f.name)
        if checked is not value:
            object.__setattr__(config, f.name, checked)  # configs are frozen


def _checking_first(post_init: Callable[[Any], None]) -> Callable[[Any], None]:
    """``post_init`` preceded by :func:`check_fields`, so a config's own checks see well-typed values."""

    @functools.wraps(post_init)
    def __post_init__(self: Any) -> None:
        if type(self).__post_init__ is __post_init__:  # not when a subclass's __post_init__ calls super()
            check_fields(self)
        post_init(self)

    __post_init__.checks_fields = True  # type: ignore[attr-defined]
    return __post_init__


class ConfigMixin:
    """Building and saving for config dataclasses: ``from_dict``, ``from_yaml``, ``to_dict``.

    Every config is checked when it is constructed (:func:`check_fields`), in Python as from YAML or
    flags. A subclass's own ``__post_init__`` is wrapped when the class is defined so that the check
    runs first, whether or not it calls ``super().__post_init__()``: a config cannot opt out by
    forgetting a line, and its own range checks never see a string where a number belongs.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__post_init__")
        if own is not None and not getattr(own, "checks_fields", False):
            cls.__post_init__ = _checking_first(own)  # type: ignore[method-assign]

    def __post_init__(self) -> None:
        if type(self).__post_init__ is ConfigMixin.__post_init__:
            check_fields(self)

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
