"""Packages whose public names are imported on first use, so that light submodules stay light.

``overseer.w2s`` and ``overseer.selfcorrect`` export their run functions and configs from the
package, but importing ``overseer.w2s.config`` (as the CLI does to check a config) must not pull in
torch, scikit-learn, pandas and matplotlib through the package's ``__init__``. A package calls
:func:`lazy_exports` instead of importing its submodules eagerly.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Mapping
from typing import Any


def lazy_exports(package: str, where: Mapping[str, str]) -> None:
    """Make each ``name`` in ``where`` an attribute of ``package`` imported from ``package.<where[name]>`` on use.

    A public name that is also the name of the submodule defining it (``overseer.w2s.run``, the
    function, defined in the module ``overseer.w2s.run``) stays the function when the submodule is
    imported later, exactly as with an eager ``from .run import run`` in ``__init__``.
    """
    where = dict(where)

    class LazyPackage(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            if name not in where:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
            setattr(self, name, value)
            return value

        def __setattr__(self, name: str, value: Any) -> None:
            submodule = f"{package}.{name}"
            if isinstance(value, types.ModuleType) and where.get(name) == name and value.__name__ == submodule:
                value = getattr(value, name)  # the import system binding the submodule: keep the function
            super().__setattr__(name, value)

        def __dir__(self) -> list[str]:
            return sorted(set(super().__dir__()) | set(where))

    sys.modules[package].__class__ = LazyPackage
