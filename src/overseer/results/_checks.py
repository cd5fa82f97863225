"""The check of a runs directory that runs before anything heavy is loaded, and leaves nothing on disk.

A runs directory that does not exist yet is checked by writing and removing a probe file in its nearest
existing parent, not by creating it: a refused run writes nothing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from overseer.errors import OverseerError
from overseer.results._rundir import DEFAULT_RUNS_DIR


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
