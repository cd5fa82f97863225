"""Cache, rate limit and bounded retries around the remote requests of any backend.

A backend whose answers come from a server sends each request through :meth:`Backend.request
<overseer.models.Backend.request>`: a cache key, a function that sends it once, and an optional
check of the answer. On its own the backend sends each request once. Wrapped in :class:`Guarded`
(as inspect_ai's ``Model`` wraps every ``ModelAPI``), the same requests are rate-limited, retried
with exponential backoff on what the backend marks :class:`RetryableError` (a line per retry says
why), bounded by a total deadline, and cached on disk by their key. Only answers that pass the
check are cached: a failed request is asked again on the next run. A server that refuses the very
first connection is taken as absent: every request stops with one line, without retries.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from overseer._storage import cause as io_reason
from overseer._storage import warn
from overseer.errors import OverseerError
from overseer.models._backend import Backend, GaveUp

Answer = dict[str, Any]


class RetryableError(Exception):
    """One try of a request failed in a way another try may not: a timeout, HTTP 429 or 5xx, a refused connection.

    Args:
        reason: why, on one line (it ends up in the retry line and the final error).
        retry_after: seconds the server asked to wait (``Retry-After``); None keeps the last one.
        answered: the server did answer (an HTTP status), so it is there.
        refused: the connection itself failed; before any answer this means no server is there.
    """

    def __init__(self, reason: str, *, retry_after: float | None = None, answered: bool = False,
                 refused: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.answered = answered
        self.refused = refused


class ItemError(Exception):
    """A request the server rejected for this item only (e.g. too long); the item is recorded as failed."""


class NotAnswered(OverseerError):
    """A request failed for good without showing that a server is there (its reply was not an API response)."""


class RateLimiter:
    """At most ``per_second`` request starts per second, shared by all worker threads."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic):
        self.interval = 1.0 / per_second if per_second and per_second > 0 else 0.0
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next request may start."""
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


class ResponseCache:
    """Successful responses on disk keyed by the request's content, so a rerun repeats no finished request."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(path, timeout=30)) as conn, conn:
                conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, body TEXT NOT NULL)")
        except (OSError, sqlite3.Error) as exc:
            raise OverseerError(
                f"cannot use the endpoint response cache {path}: {exc} "
                "(set OVERSEER_CACHE_DIR to a writable folder, or disable the cache)"
            ) from exc
        self._lock = threading.Lock()

    @staticmethod
    def key(url: str, payload: dict[str, Any]) -> str:
        """Hash of the URL and the canonical JSON body."""
        canonical = json.dumps({"url": url, "body": payload}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached response, or None."""
        with self._lock, closing(sqlite3.connect(self.path, timeout=30)) as conn:
            row = conn.execute("SELECT body FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, body: dict[str, Any]) -> None:
        """Store a successful response."""
        with self._lock, closing(sqlite3.connect(self.path, timeout=30)) as conn, conn:
            conn.execute("INSERT OR REPLACE INTO responses VALUES (?, ?)", (key, json.dumps(body)))


class Guarded(Backend):
    """``inner`` with its remote requests cached, rate-limited and retried; everything else is ``inner``'s.

    Args:
        inner: the backend whose requests to guard (it sends them through :meth:`Backend.request`).
        requests_per_second: request starts per second, across all threads.
        max_retries, backoff_s: retries after the first try, waiting ``backoff_s * 2**k`` (at most
            60 s, at least what the server's ``Retry-After`` asked).
        deadline_s: total time one request may take, retries included.
        cache_dir: where answers are cached (default ``<overseer cache>/endpoint``).
        use_cache: read and write the cache; refresh_cache: write but never read it (``--force``).
        verbose: print a line per retry to stderr.
    """

    def __init__(
        self,
        inner: Backend,
        requests_per_second: float = 20.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        deadline_s: float = 300.0,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        refresh_cache: bool = False,
        verbose: bool = True,
    ):
        if not (isinstance(deadline_s, int | float) and deadline_s > 0):
            raise OverseerError(f"endpoint deadline_s must be a positive number of seconds; got {deadline_s!r}")
        if not (isinstance(max_retries, int) and max_retries >= 0):
            raise OverseerError(f"endpoint max_retries must be an integer >= 0; got {max_retries!r}")
        self.inner = inner
        self.kind = inner.kind  # type: ignore[misc]  # the wrapped backend's, per instance
        self.capabilities = inner.capabilities  # type: ignore[misc]
        self.name = inner.name
        self.requests_per_second = requests_per_second
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.deadline_s = float(deadline_s)
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.refresh_cache = refresh_cache
        self.verbose = verbose
        self.stats = {"requests": 0, "cache_hits": 0, "retries": 0, "failed": 0}
        self._limiter = RateLimiter(requests_per_second)
        self._cache: ResponseCache | None = None
        self._cache_opened = False
        self._lock = threading.Lock()
        # A server that never answered and refused the first connection is not there: every request
        # stops at once with one line, instead of each concurrent request retrying with a line per try.
        self._answered = False
        self._unreachable: str | None = None
        inner.requester = self

    def __getattr__(self, name: str) -> Any:
        """The wrapped backend's own attributes (``model``, ``url``, ``client``...)."""
        inner = self.__dict__.get("inner")
        if inner is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(inner, name)

    @property
    def requests_sent(self) -> int:
        """Requests sent so far (retries included, cache hits not)."""
        return self.stats["requests"]

    # ------------------------------------------------------------------ the wrapped backend's work

    def identity(self) -> dict[str, Any]:
        """The wrapped backend's identity: caching and retries change no answer."""
        return self.inner.identity()

    def describe(self) -> dict[str, Any]:
        """What the wrapped backend records about itself."""
        return self.inner.describe()

    def supports(self, capability: str) -> bool:
        """What the wrapped backend supports."""
        return self.inner.supports(capability)

    def require(self, capability: str) -> None:
        """Refuse what the wrapped backend cannot do."""
        self.inner.require(capability)

    def render(self, prompt: Any) -> str:
        """The wrapped backend's prompt text."""
        return self.inner.render(prompt)

    def generate(self, prompts: Sequence[Any], config: Any = None) -> list[list[Any]]:
        """The wrapped backend's generations, its requests guarded."""
        return self.inner.generate(prompts, config)

    def score_options(self, prompts: Sequence[Any], options: Sequence[Sequence[str]]) -> list[Any]:
        """The wrapped backend's option scores, its requests guarded."""
        return self.inner.score_options(prompts, options)

    def count_tokens(self, text: str) -> int:
        """The wrapped backend's token count."""
        return self.inner.count_tokens(text)

    def next_token_logprobs(self, prompts: Sequence[Any], top_k: int = 20) -> list[Any]:
        """The wrapped backend's next-token top log-probabilities, its requests guarded."""
        return self.inner.next_token_logprobs(prompts, top_k)

    def tokens_after(self, prompt: Any, option: str) -> int | None:
        """The wrapped backend's token count of ``option`` after ``prompt``."""
        return self.inner.tokens_after(prompt, option)

    def scoring_modes(self) -> Any:
        """The wrapped backend's scoring modes."""
        return self.inner.scoring_modes()

    @property
    def loaded(self) -> Any:
        """The wrapped backend's loaded model."""
        return self.inner.loaded

    @property
    def context_length(self) -> int | None:
        """The wrapped backend's context window."""
        return self.inner.context_length

    # ------------------------------------------------------------------ requests

    def _response_cache(self) -> ResponseCache | None:
        """The cache, opened on the first request; None when off or when it cannot be opened (one warning)."""
        with self._lock:
            if not self._cache_opened:
                self._cache_opened = True
                if self.use_cache:
                    from overseer.models._catalog import cache_root

                    root = Path(self.cache_dir) if self.cache_dir else cache_root() / "endpoint"
                    try:
                        self._cache = ResponseCache(root / "responses.sqlite")
                    except OverseerError as exc:  # read-only, full or damaged: the answers are simply not kept
                        warn(f"cannot use the endpoint response cache {root / 'responses.sqlite'} "
                             f"({io_reason(exc.__cause__ or exc)}); going on without it, so a rerun asks the "
                             "server again")
            return self._cache

    def _log(self, message: str) -> None:
        if self.verbose:
            print(f"{self.inner.where()}: {message}", file=sys.stderr, flush=True)

    def request(self, key: str, send: Callable[[], Answer],
                validate: Callable[[Answer], object] | None = None) -> Answer:
        """``send()``'s answer from the cache, or sent with rate limiting and bounded retries, then cached.

        ``validate(answer)`` raises :class:`OverseerError` for an answer the caller cannot use (no
        logprobs, say): such an answer is never cached, and one already in the cache is asked again,
        so a server fixed after a failed run serves the rerun.
        """
        where = self.inner.where()
        cache = self._response_cache()
        if cache is not None and not self.refresh_cache:
            try:
                hit = cache.get(key)
            except (sqlite3.Error, ValueError):  # a damaged entry is a miss: asked again, then replaced
                hit = None
            if hit is not None and validate is not None:
                try:
                    validate(hit)
                except OverseerError:
                    hit = None
            if hit is not None:
                with self._lock:
                    self.stats["cache_hits"] += 1
                return hit
        if self._unreachable:
            raise GaveUp(self._unreachable)
        started = time.monotonic()
        last = ""
        retry_after = 0.0
        for attempt in range(self.max_retries + 1):
            if attempt:
                wait = min(max(self.backoff_s * 2 ** (attempt - 1), retry_after), 60.0)
                if time.monotonic() - started + wait > self.deadline_s:
                    break
                with self._lock:
                    self.stats["retries"] += 1
                self._log(f"{last}; retry {attempt}/{self.max_retries} in {wait:.1f}s")
                time.sleep(wait)
            self._limiter.wait()
            with self._lock:
                self.stats["requests"] += 1
            try:
                body = send()
            except RetryableError as exc:
                if exc.answered:
                    self._answered = True  # a server is there, even if it cannot answer yet
                last = exc.reason
                if exc.retry_after is not None:
                    retry_after = exc.retry_after
                if exc.refused:
                    with self._lock:
                        if not self._answered:
                            self.stats["failed"] += 1
                            self._unreachable = self._unreachable or (
                                f"{where} cannot be reached: {last}; is the server running at that address?"
                            )
                    if self._unreachable:
                        raise GaveUp(self._unreachable) from None
                continue
            except (ItemError, OverseerError) as exc:  # a refusal or an unusable answer: no retry
                if not isinstance(exc, NotAnswered):
                    self._answered = True
                raise
            self._answered = True
            if validate is not None:
                validate(body)
            cache = self._cache
            if cache is not None:
                try:
                    cache.put(key, body)
                except (sqlite3.Error, OSError) as exc:  # full or read-only: one warning, then uncached
                    with self._lock:
                        dropped, self._cache = self._cache is not None, None
                    if dropped:
                        warn(f"could not write to the endpoint response cache {cache.path} ({io_reason(exc)}); going "
                             "on without it, so a rerun asks the server again")
            return body
        with self._lock:
            self.stats["failed"] += 1
        spent = time.monotonic() - started
        raise GaveUp(
            f"{where} failed after {attempt + 1} attempts in {spent:.0f}s; last error: {last} "
            "(options timeout_s, max_retries and deadline_s; --endpoint-timeout and --endpoint-retries on the CLI)"
        )
