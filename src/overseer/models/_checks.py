"""Checks of model names and devices that run before any model, torch or the hub is touched.

A run that names a model that cannot exist or a device this machine does not have fails here in one
line, within a second of starting. Hub ids are checked for form only; whether the hub or its cache has
them is checked when the run starts (:func:`check_model`), since that may take a network request.
"""

from __future__ import annotations

from collections.abc import Iterable

from overseer.models._backend import get_backend, split_spec
from overseer.models._catalog import resolve_model
from overseer.models._devices import resolve_device


def check_local_models(names: Iterable[str], trust_remote_code: bool = False) -> None:
    """Refuse model specs that cannot name local weights (unknown short names, rungs, missing files)."""
    for name in names:
        if split_spec(name)[0] == "hf":
            resolve_model(name, trust_remote_code=trust_remote_code)
        else:
            get_backend(name).require("loaded_model")  # one line naming the backends that can


def check_model_specs(specs: Iterable[str]) -> list[str]:
    """Refuse model specs that are malformed or name unknown local models (any backend is allowed).

    Returns:
        The backend kind of each spec (``hf`` for local weights).
    """
    kinds = []
    for spec in specs:
        kinds.append(split_spec(spec)[0])
        if kinds[-1] == "hf":
            resolve_model(spec)
    return kinds


def check_device(device: str | None) -> None:
    """Refuse a device this machine does not have; the default and ``cpu`` need no check (and no torch)."""
    if device not in (None, "cpu"):
        resolve_device(device)
