"""Safe local storage shared by the caches, the job store and run directories.

- :class:`FileLock`: an advisory lock on a file beside what it protects (``fcntl.flock``), so two
  processes computing the same run or job take turns: the second waits, then reuses. The
  operating system releases it when its process dies, so a killed run never blocks the next one.
- :func:`warn` and :func:`cause`: the one-line warnings that damaged, full or read-only storage
  produces where it must not end the run (caches, indexes).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from pathlib import Path
from types import TracebackType

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
