"""An OpenAI-compatible HTTP backend: evaluate a model served elsewhere (vLLM, llama.cpp's server, ...).

Scoring uses the completions API with ``echo=true`` and ``logprobs``: the server returns the
log-probability of every token of ``prompt + option``, and the tokens that fall inside the option's
characters are summed. All options of an item go in one request (``prompt`` is a list). Generation
uses the chat API (or completions, if asked), with the assistant's prefilled start continued.

Requests are rate-limited, retried with exponential backoff on connection errors, 429 and 5xx, and
cached on disk by request content: re-running an interrupted evaluation sends only the requests that
never got an answer. Only the standard library is used (``urllib``), so nothing extra is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from overseer.errors import OverseerError
from overseer.models._lm import HUMAN_ASSISTANT, Chat, OptionScores, format_chat, human_assistant

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_CONTEXT_WORDS = ("context length", "maximum context", "too long", "too many tokens", "exceeds")


class ItemError(Exception):
    """A request the server rejected for this item only (e.g. too long); the item is recorded as failed."""


def normalize_base_url(url: str) -> str:
    """``http://host:8000`` and ``http://host:8000/v1/`` both become ``http://host:8000/v1``."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise OverseerError(f"endpoint {url!r} is not an http(s) URL (e.g. http://127.0.0.1:8000/v1)")
    path = parsed.path.rstrip("/")
    if path in ("", "/"):
        path = "/v1"
    return urllib.parse.urlunparse(parsed._replace(path=path, params="", query="", fragment=""))


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
    """Responses on disk keyed by the request's content, so a rerun repeats no finished request."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(path, timeout=30)) as conn, conn:
            conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, body TEXT NOT NULL)")
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


def _error_text(raw: bytes) -> str:
    """The server's error message, on one line."""
    try:
        body = json.loads(raw.decode("utf-8", "replace"))
        err = body.get("error", body) if isinstance(body, dict) else body
        msg = err.get("message", err) if isinstance(err, dict) else err
        text = str(msg)
    except (json.JSONDecodeError, AttributeError):
        text = raw.decode("utf-8", "replace")
    return " ".join(text.split())[:300] or "(no message)"


@dataclass
class EndpointBackend:
    """An OpenAI-compatible server behind :class:`~overseer.models.LMBackend`.

    Args:
        url: base URL of the API, e.g. ``http://127.0.0.1:8000/v1`` (``/v1`` is added if missing).
        model: the model name the server knows (sent as ``model``).
        api_key: sent as a bearer token; default ``$OVERSEER_API_KEY`` or ``$OPENAI_API_KEY``.
        tokenizer: optional local tokenizer whose chat template renders prompts for the completions
            API; without one the paper's Human/Assistant format is used.
        generation: ``chat`` (chat API, prefilled assistant turn continued) or ``completions``.
        requests_per_second, max_retries, backoff_s, timeout_s, concurrency: politeness and patience.
        cache_dir: where responses are cached (default ``<overseer cache>/endpoint``); None disables.
    """

    url: str
    model: str
    api_key: str | None = None
    tokenizer: Any = None
    generation: str = "chat"
    requests_per_second: float = 20.0
    max_retries: int = 5
    backoff_s: float = 1.0
    timeout_s: float = 120.0
    concurrency: int = 4
    cache_dir: Path | None = field(default=None)
    use_cache: bool = True
    name: str = field(init=False)
    requests_sent: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.url = normalize_base_url(self.url)
        if self.generation not in ("chat", "completions"):
            raise OverseerError(f"unknown endpoint generation mode {self.generation!r}; allowed: chat, completions")
        if self.api_key is None:
            self.api_key = os.environ.get("OVERSEER_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.name = self.model
        self._limiter = RateLimiter(self.requests_per_second)
        self._cache: ResponseCache | None = None
        if self.use_cache:
            from overseer.models._load import cache_root

            root = Path(self.cache_dir) if self.cache_dir else cache_root() / "endpoint"
            self._cache = ResponseCache(root / "responses.sqlite")
        self._count_lock = threading.Lock()

    # ------------------------------------------------------------------ HTTP

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST JSON with caching, rate limiting and retries; one-line errors for what cannot be fixed here."""
        url = f"{self.url}/{path}"
        key = ResponseCache.key(url, payload)
        if self._cache is not None:
            hit = self._cache.get(key)
            if hit is not None:
                return hit
        data = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(min(self.backoff_s * 2 ** (attempt - 1), 60.0))
            self._limiter.wait()
            with self._count_lock:
                self.requests_sent += 1
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    body = json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                message = _error_text(exc.read())
                if exc.code in _RETRY_STATUS:
                    last = f"HTTP {exc.code}: {message}"
                    retry_after = exc.headers.get("Retry-After") if exc.headers else None
                    if retry_after and retry_after.replace(".", "", 1).isdigit():
                        time.sleep(min(float(retry_after), 60.0))
                    continue
                if exc.code in (400, 413, 422) and any(w in message.lower() for w in _CONTEXT_WORDS):
                    raise ItemError(f"endpoint rejected the item: {message}") from exc
                raise OverseerError(f"endpoint {url} refused the request (HTTP {exc.code}): {message}") from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"{type(exc).__name__}: {reason}"
                continue
            except json.JSONDecodeError as exc:
                raise OverseerError(f"endpoint {url} answered with something that is not JSON") from exc
            if not isinstance(body, dict) or "choices" not in body:
                raise OverseerError(f"endpoint {url} answered without 'choices' (is it OpenAI-compatible?)")
            if self._cache is not None:
                self._cache.put(key, body)
            return body
        raise OverseerError(f"endpoint {url} failed after {self.max_retries + 1} attempts; last error: {last}")

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if self.concurrency <= 1 or len(items) <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(fn, items))

    # ------------------------------------------------------------------ LMBackend

    def render(self, chat: Chat) -> str:
        """Prompt text for the completions API: a local chat template if given, else Human/Assistant."""
        if self.tokenizer is not None:
            return format_chat(self.tokenizer, chat)
        return human_assistant(chat.messages, chat.assistant_prefix)

    def _score_one(self, job: tuple[str, Sequence[str]]) -> OptionScores:
        prompt, options = job
        if not options or any(not o for o in options):
            return OptionScores(error="an answer option is empty (nothing to score)")
        payload = {
            "model": self.model,
            "prompt": [prompt + o for o in options],
            "max_tokens": 1,
            "temperature": 0,
            "echo": True,
            "logprobs": 1,
        }
        try:
            body = self._post("completions", payload)
        except ItemError as exc:
            return OptionScores(error=str(exc))
        choices = sorted(body["choices"], key=lambda c: c.get("index", 0))
        if len(choices) != len(options):
            raise OverseerError(
                f"endpoint returned {len(choices)} choices for {len(options)} prompts (does it accept a list prompt?)"
            )
        sums, counts = [], []
        for choice, option in zip(choices, options, strict=True):
            if not str(choice.get("text") or "").startswith(prompt + option):
                # some servers accept echo=true but return only the generated token; scoring would be noise
                raise OverseerError(
                    "endpoint did not echo the prompt (completions with echo=true); it cannot score options"
                )
            total, n = option_logprob(choice.get("logprobs"), len(prompt), len(prompt) + len(option))
            sums.append(total)
            counts.append(n)
        return OptionScores(tuple(sums), tuple(counts))

    def score_options(self, chats: Sequence[Chat], options: Sequence[Sequence[str]]) -> list[OptionScores]:
        """One completions request per item (all its options), echoing prompt log-probs."""
        jobs = [(self.render(c), list(o)) for c, o in zip(chats, options, strict=True)]
        return self._map(self._score_one, jobs)

    def _generate_one(self, job: tuple[Chat, int]) -> str | None:
        try:
            return self._generate_request(*job)
        except ItemError:
            return None  # this item only (e.g. too long): its scoring will be recorded as failed

    def _generate_request(self, chat: Chat, max_new_tokens: int) -> str:
        if self.generation == "completions":
            payload: dict[str, Any] = {
                "model": self.model,
                "prompt": self.render(chat),
                "max_tokens": max_new_tokens,
                "temperature": 0,
            }
            body = self._post("completions", payload)
            return str(body["choices"][0].get("text") or "").strip()
        messages = [dict(m) for m in chat.messages]
        if chat.assistant_prefix:
            messages.append({"role": "assistant", "content": chat.assistant_prefix})
        payload = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_new_tokens,
            "temperature": 0,
            # vLLM's names for "continue the last assistant message"; llama.cpp continues it by default
            "continue_final_message": bool(chat.assistant_prefix),
            "add_generation_prompt": not chat.assistant_prefix,
        }
        body = self._post("chat/completions", payload)
        message = body["choices"][0].get("message") or {}
        return str(message.get("content") or "").strip()

    def generate(self, chats: Sequence[Chat], max_new_tokens: int) -> list[str | None]:
        """Greedy (temperature 0) continuation of each chat; None for an item the server rejected."""
        if max_new_tokens < 1:
            raise OverseerError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        return self._map(self._generate_one, [(c, max_new_tokens) for c in chats])

    def describe(self) -> dict[str, Any]:
        """URL, model name and prompt format: the backend's identity in the run record."""
        return {
            "backend": "endpoint",
            "model": self.model,
            "url": self.url,
            "chat_format": "chat_template" if self.tokenizer is not None else HUMAN_ASSISTANT,
            "generation": self.generation,
        }


def option_logprob(logprobs: Any, start: int, end: int) -> tuple[float, int]:
    """Sum the echoed token log-probs whose characters overlap ``[start, end)`` of the echoed text.

    ``logprobs`` is a completions ``choices[i].logprobs`` object (``tokens``, ``token_logprobs``,
    ``text_offset``). A token straddling the prompt/option boundary counts for the option.

    >>> option_logprob({"tokens": ["Hi", " her"], "token_logprobs": [None, -0.5], "text_offset": [0, 2]}, 2, 6)
    (-0.5, 1)
    """
    if not isinstance(logprobs, dict) or not logprobs.get("token_logprobs") or not logprobs.get("text_offset"):
        raise OverseerError(
            "endpoint returned no logprobs for the echoed prompt; it must support completions with "
            "echo=true and logprobs (vLLM does; some servers do not)"
        )
    tokens = logprobs.get("tokens") or []
    total, count = 0.0, 0
    for i, (offset, value) in enumerate(zip(logprobs["text_offset"], logprobs["token_logprobs"], strict=False)):
        length = len(tokens[i]) if i < len(tokens) else 1
        if offset >= end or offset + max(length, 1) <= start:
            continue
        if value is None:
            raise OverseerError("endpoint returned a null logprob inside an answer option")
        total += float(value)
        count += 1
    if count == 0:
        raise OverseerError("endpoint's echoed tokens do not cover the answer option (text_offset mismatch)")
    return total, count
