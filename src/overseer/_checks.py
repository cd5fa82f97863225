"""Checks of a run's names and paths that run before anything heavy is imported, loaded or written.

A run that would fail on a bad ``--out``, dataset, data file or model name fails here, in one line,
within a second or two of starting, instead of after the models are loaded and the activations are
computed. Only light modules are imported (no torch, transformers, scikit-learn, pandas or
matplotlib), and nothing is left on disk: a runs directory that does not exist yet is checked by
writing and removing a probe file in its nearest existing parent, not by creating it.

``overseer w2s run`` and ``overseer selfcorrect run`` call :func:`check_w2s_run` and
:func:`check_selfcorrect_run` before they import their pillar; the pillars' ``run`` functions call
them again (cheaply), so library users get the same early refusals.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from overseer.errors import OverseerError

if TYPE_CHECKING:
    from overseer.selfcorrect.config import SelfCorrectConfig
    from overseer.w2s.config import W2SConfig

DEFAULT_RUNS_DIR = "runs"
"""Where runs go without ``--out`` (the results layer's default, named here to keep this module light)."""


def _first_line(exc: OSError) -> str:
    text = exc.strerror or str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_runs_dir(out: str | os.PathLike[str] | None, flag: str = "--out") -> Path:
    """Refuse a runs directory that cannot be written, without creating anything.

    An existing ``out`` must be a directory in which a file can be created and removed; one that
    does not exist yet must be creatable: its nearest existing parent must be a writable directory.

    Args:
        out: the runs directory (default ``runs`` in the working directory).
        flag: how the user gave it, for messages (``--out``, ``runs_dir``).

    Returns:
        The path checked.
    """
    path = Path(out if out is not None else DEFAULT_RUNS_DIR).expanduser()
    shown = f"{flag} {str(path)!r}"
    if path.exists() and not path.is_dir():
        raise OverseerError(f"{shown} is a file, not a directory; give a directory for the runs")
    parent = path
    while not parent.exists():
        if parent.parent == parent:
            break
        parent = parent.parent
    if not parent.is_dir():  # an ancestor is a file: mkdir would fail
        raise OverseerError(f"{shown} cannot be created: {str(parent)!r} is a file, not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".overseer-write-check-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        where = "is not writable" if parent == path else f"cannot be created: {str(parent)!r} is not writable"
        raise OverseerError(f"{shown} {where} ({_first_line(exc)})") from None
    return path


def check_exists(path: str | os.PathLike[str], what: str, hint: str = "") -> Path:
    """Refuse a path that does not exist (``what`` names it in the message: ``--data-path``)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise OverseerError(f"{what} {str(path)!r} does not exist" + (f"; {hint}" if hint else ""))
    return p


def check_local_models(names: Iterable[str], trust_remote_code: bool = False) -> None:
    """Refuse model specs that cannot name local weights (unknown short names, rungs, missing files).

    Hub ids are checked for form only here; whether the hub or its cache has them is checked when
    the run starts (:func:`overseer.models._load.check_model`), since that may take a network request.
    """
    from overseer.models._backend import get_backend, split_spec
    from overseer.models._load import resolve_model

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
    from overseer.models._backend import split_spec
    from overseer.models._load import resolve_model

    kinds = []
    for spec in specs:
        kinds.append(split_spec(spec)[0])
        if kinds[-1] == "hf":
            resolve_model(spec)
    return kinds


def check_dataset(name: str, dataset_args: dict[str, Any]) -> None:
    """Refuse an unknown dataset, loader arguments it does not take, and a data path that does not exist.

    Values are left to the loader, which parses and checks them when the run loads the data.
    """
    import inspect

    from overseer.data import dataset_info

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


def check_device(device: str | None) -> None:
    """Refuse a device this machine does not have; the default and ``cpu`` need no check (and no torch)."""
    if device not in (None, "cpu"):
        from overseer.models._load import check_device as check_with_torch

        check_with_torch(device)


def check_w2s_run(cfg: W2SConfig, out: str | os.PathLike[str] | None) -> None:
    """Everything a weak-to-strong run can refuse before loading data or models: device, names, paths."""
    check_device(cfg.device)
    check_dataset(cfg.dataset, cfg.dataset_args)
    check_local_models(tuple(m for m in (cfg.weak_model, cfg.strong) if m is not None), cfg.trust_remote_code)
    check_runs_dir(out)


def check_selfcorrect_run(cfg: SelfCorrectConfig) -> None:
    """Everything a self-correction run can refuse before loading data or models: names, device, data files."""
    from overseer.selfcorrect.run import model_spec  # light: the models it names are not loaded here

    if "hf" in check_model_specs(model_spec(m, cfg) for m in cfg.models):
        check_device(cfg.device)  # only local models run on it
    root = cfg.data_path
    if cfg.data_dir and not root.is_dir():
        raise OverseerError(f"--data-dir {cfg.data_dir!r} is not a directory; give the folder holding bbq/, "
                            "winogender/ and law_school/")
    if "bbq" in cfg.suites and not (cfg.bbq_source or "").startswith("hf:"):
        from overseer.data.bbq import missing_bbq_files

        problem = missing_bbq_files(Path(cfg.bbq_source).expanduser() if cfg.bbq_source else root / "bbq")
        if problem:
            raise OverseerError(problem)
    wanted = {
        "winogender": ("winogender/templates.tsv", "winogender/occupations-stats.tsv"),
        "law": ("law_school/law_data.csv",),
    }
    for suite in cfg.suites:
        for relative in wanted.get(suite, ()):
            if not (root / relative).is_file():
                raise OverseerError(f"{suite} data file {str(root / relative)!r} not found; point --data-dir at "
                                    f"a folder with {relative.split('/')[0]}/ (or drop --suite {suite})")
    check_runs_dir(cfg.runs_dir)
