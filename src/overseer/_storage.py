"""Safe local storage shared by the caches, the job store and run directories.

- :class:`FileLock`: an advisory lock on a file beside what it protects (``fcntl.flock``), so two
  processes computing the same run or job take turns: the second waits, then reuses. The
  operating system releases it when its process dies, so a killed run never blocks the next one.
- :func:`warn` and :func:`cause`: the one-line warnings that damaged, full or read-only storage
  produces where it must not end the run (caches, indexes).
- Atomic writes: :func:`atomic_write_text`, :func:`atomic_write_bytes`, :func:`atomic_file` (for
  writers that take a path) and :func:`atomic_directory`. Each writes under a temporary name beside
  the target and renames it into place, so a reader (or a run resumed after a kill) sees the whole
  new file or folder or none of it, never half; on an error the temporary copy is removed.
- :func:`write_json` with :func:`jsonable`: the one JSON policy for files other programs read. NaN
  and infinity become ``null`` (strict JSON, which every reader parses), numpy scalars plain numbers.
- :class:`WorkDir`: a folder beside the runs that a killed run resumes from (its finished units of
  work are kept; see there).
"""

from __future__ import annotations

import atexit
import errno
import json
import math
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from overseer.errors import OverseerError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; identical concurrent runs are not serialised
    fcntl = None  # type: ignore[assignment]

_held: dict[tuple[int, str], list[int]] = {}  # (pid, lock path) -> [file descriptor, holders in this process]
_held_guard = threading.Lock()


@atexit.register
def _release_all() -> None:
    """At exit (Ctrl-C included), remove the lock files this process still holds; the OS drops the locks."""
    with _held_guard:
        for (pid, path), (fd, _) in list(_held.items()):
            if pid == os.getpid():
                try:
                    os.unlink(path)
                    os.close(fd)
                except OSError:
                    pass
                del _held[(pid, path)]


def warn(message: str) -> None:
    """Print ``warning: <message>`` as one line on stderr."""
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def cause(exc: BaseException) -> str:
    """The short reason of an I/O error: ``No space left on device``, ``Permission denied``, ..."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


class FileLock:
    """An exclusive advisory lock held through the file ``path`` (created, and removed on release).

    :meth:`acquire` waits while another process holds the lock, printing ``waiting`` once (e.g.
    ``waiting for another process computing run w2s-1a2b``). Within one process the lock is
    re-entrant: a second acquire of the same path succeeds at once, so a run abandoned without
    releasing its lock can never deadlock its own process. Where the lock file cannot be created
    (a read-only directory) or the file system has no locks, the lock is skipped: it only
    coordinates processes, and the caller's own write reports the real problem.
    """

    def __init__(self, path: str | Path, waiting: str | None = None):
        self.path = Path(path).absolute()
        self.waiting = waiting
        self._key: tuple[int, str] | None = None

    @property
    def held(self) -> bool:
        """True between a successful :meth:`acquire` and :meth:`release`."""
        return self._key is not None

    def acquire(self) -> bool:
        """Take the lock, waiting for another process that holds it; True when it had to wait."""
        if self._key is not None or fcntl is None:
            return False
        key = (os.getpid(), str(self.path))
        with _held_guard:
            if key in _held:
                _held[key][1] += 1
                self._key = key
                return False
        waited = False
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                return waited  # nowhere to put a lock: go on without one
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if not waited and self.waiting:
                        print(self.waiting, file=sys.stderr, flush=True)
                    waited = True
                    fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException as exc:  # Ctrl-C while waiting, or no locks on this file system
                os.close(fd)
                if isinstance(exc, OSError):
                    return waited
                raise
            # The previous holder removes the file as it lets go: make sure we locked the file that is there now.
            try:
                now, ours = os.stat(self.path), os.fstat(fd)
                if (now.st_dev, now.st_ino) == (ours.st_dev, ours.st_ino):
                    break
            except OSError:
                pass
            os.close(fd)
        with _held_guard:
            _held[key] = [fd, 1]
        self._key = key
        return waited

    def release(self) -> None:
        """Let go of the lock (the last holder in this process removes the lock file)."""
        key, self._key = self._key, None
        if key is None:
            return
        with _held_guard:
            entry = _held.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _held[key]
            try:
                os.unlink(self.path)  # while still holding it: a waiter then sees another file and retries
            except OSError:
                pass
            os.close(entry[0])

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # noqa: S110 - interpreter shutdown: the OS releases the lock anyway
            pass


# -- atomic writes ---------------------------------------------------------------------------------

T = TypeVar("T")


def temporary_name(path: str | Path) -> Path:
    """``.<name>.tmp-<pid>`` beside ``path``: hidden, and per process, so concurrent writers never share it."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextmanager
def atomic_file(path: str | Path, temporary: str | Path | None = None) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` through; on success it is renamed to ``path``.

    For writers that want a file name (``DataFrame.to_parquet``, ``Figure.savefig``). On any error
    (Ctrl-C included) the temporary file is removed and ``path``, if it existed, is left untouched.
    ``temporary`` overrides the temporary name, for a cache whose cleaner looks for it.
    """
    path = Path(path)
    tmp = Path(temporary) if temporary is not None else temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a reader sees the old file or the new one, never half."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: a reader sees the old file or the new one, never half."""
    atomic_write_bytes(path, text.encode())


def write_report_file(text: str, out: str | Path | None) -> Path | None:
    """A pillar report's ``out/report.md`` (None when no ``out``); a folder that cannot be made is one line."""
    if out is None:
        return None
    path = Path(out) / "report.md"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OverseerError(f"cannot write the report to --out {str(out)!r}: {exc.strerror or exc}") from None
    atomic_write_text(path, text)
    return path


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values: NaN and infinity as None, numpy scalars as numbers, paths as strings."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return jsonable(obj.item())
    return obj


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically, NaN and infinity as ``null`` (see :func:`jsonable`)."""
    atomic_write_text(path, json.dumps(jsonable(obj), indent=2, sort_keys=False) + "\n")


def publish_directory(staging: str | Path, final: str | Path) -> None:
    """Rename the finished folder ``staging`` to ``final``, replacing an older ``final``.

    The old folder is first renamed aside and only then deleted, so a reader never sees it half
    deleted. If another process publishes ``final`` between the two renames, its folder is kept
    and ``staging`` removed: both computed the same thing.
    """
    staging, final = Path(staging), Path(final)
    if final.exists():
        aside = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(aside, ignore_errors=True)  # left by a killed process of the same id
        try:
            os.replace(final, aside)  # any other failure (permissions) is raised: the new folder must not be lost
        except FileNotFoundError:
            pass  # another process removed it a moment ago
        else:
            shutil.rmtree(aside, ignore_errors=True)
    try:
        os.replace(staging, final)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        shutil.rmtree(staging, ignore_errors=True)


def remove_directory(path: str | Path, aside: str | None = None) -> None:
    """Delete the folder ``path``, renamed aside first so that no reader sees it half deleted.

    ``aside`` is the name it is renamed to (in the same folder); a folder already gone is no error.
    """
    path = Path(path)
    moved = path.with_name(aside or f".{path.name}.removed-{os.getpid()}")
    shutil.rmtree(moved, ignore_errors=True)  # left by a killed process of the same id
    try:
        os.replace(path, moved)
    except OSError:
        return
    shutil.rmtree(moved, ignore_errors=True)


@contextmanager
def atomic_directory(final: str | Path, staging: str | Path | None = None) -> Iterator[Path]:
    """Yield an empty staging folder to fill; on success it replaces ``final`` (see :func:`publish_directory`).

    On any error (Ctrl-C included) the staging folder is removed and nothing appears at ``final``.
    A staging folder left by an earlier, killed process of the same id is cleared first.
    ``staging`` overrides its name (a cache whose cleaner looks for it).
    """
    final = Path(final)
    tmp = Path(staging) if staging is not None else temporary_name(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        publish_directory(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# -- resumable work --------------------------------------------------------------------------------

class WorkDir:
    """A folder that a killed run resumes from: ``<folder>/.<stem>.work`` beside the runs.

    Each finished unit of work (a file or a folder) is written into it atomically, so a unit that
    exists is complete and is reused, and one that a kill interrupted is simply missing and redone.
    A work folder shared by several runs (named by a hash of what its units depend on) is used
    under a :class:`FileLock` (``.<stem>.work.lock``) when ``waiting_for`` names who else may use
    it (``another audit``), so two processes take turns instead of computing the same unit twice.
    Use it as a context manager: entering creates the folder and takes the lock; leaving releases it.
    """

    def __init__(self, folder: str | Path, stem: str, waiting_for: str | None = None):
        self.path = Path(folder) / f".{stem}.work"
        self._lock = (FileLock(self.path.with_name(f"{self.path.name}.lock"),
                               waiting=f"waiting for {waiting_for} using {self.path.name}") if waiting_for else None)

    def __enter__(self) -> WorkDir:
        self.path.mkdir(parents=True, exist_ok=True)
        if self._lock is not None:
            self._lock.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._lock is not None:
            self._lock.release()

    def json_unit(self, name: str | Path, compute: Callable[[], T], redo: bool = False,
                  encode: Callable[[T], str] = json.dumps) -> T:
        """The unit ``name`` (a JSON file in the folder): read back when finished, else ``compute()``d and saved.

        ``redo`` computes it again even when finished. ``encode`` turns the value into the file's
        text; the default keeps NaN and infinity as Python's JSON reads them back, so a resumed run
        gets exactly the values a fresh one computed.
        """
        path = self.path / name
        if path.is_file() and not redo:
            return json.loads(path.read_text())
        value = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, encode(value))
        return value
