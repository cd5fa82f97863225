"""Checks of a dataset's name, loader arguments and files that run before any data is read."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

from overseer.data._registry import dataset_info
from overseer.errors import OverseerError


def check_exists(path: str | os.PathLike[str], what: str, hint: str = "") -> Path:
    """Refuse a path that does not exist (``what`` names it in the message: ``--data-path``)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise OverseerError(f"{what} {str(path)!r} does not exist" + (f"; {hint}" if hint else ""))
    return p


def check_dataset(name: str, dataset_args: dict[str, Any]) -> None:
    """Refuse an unknown dataset, loader arguments it does not take, and a data path that does not exist.

    Values are left to the loader, which parses and checks them when the run loads the data.
    """
    info = dataset_info(name)
    params = inspect.signature(info.loader).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        allowed = sorted(k for k, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        for key in dataset_args:
            if key not in allowed:
                raise OverseerError(f"unknown dataset_args key {key!r} for dataset {name!r}; allowed: "
                                    f"{', '.join(allowed) or '(none)'}")
    path = dataset_args.get("path")
    if path is not None:
        check_exists(path, "--data-path", f"give the file (or folder) that dataset {name!r} should read")
    elif name == "local":
        raise OverseerError("dataset 'local' needs a data file: path=... (CLI: --data-path FILE)")
