"""The ``openai`` backend: a model served elsewhere (vLLM, ollama, llama.cpp's server, a hosted API).

Spec: ``openai/MODEL@http://HOST:PORT/v1``. Requests go through the official ``openai`` client.
Generation uses the chat API for conversations (a prefilled assistant start is continued, with
vLLM's ``continue_final_message``) and the completions API for plain-string prompts; sampling
settings, stop strings and seeds are sent as given, and token ids come back when the server
supports vLLM's ``return_tokens_as_token_ids``. Option scoring uses the completions API with
``echo`` and ``logprobs``: the log-probability of every token of ``prompt + option`` is returned and
the tokens inside the option's characters are summed (servers without ``echo``, such as llama.cpp's,
are refused with a clear message).

Requests are rate-limited, retried with exponential backoff on connection errors, timeouts, 429
and 5xx (a line per retry says why), bounded by a per-request timeout and a total deadline, and
cached on disk by request content. Only successful answers are cached: a failed request is
recorded as failed for its item and asked again on the next run. A server that refuses the very
first connection is taken as absent: the run stops with one line, without retries. No API key is
sent unless the user names the environment variable that holds it (``api_key_env``), and a key is
never sent over plain http to a host other than loopback unless ``allow_insecure_key`` is set.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import sqlite3
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

from overseer._storage import cause as io_reason
from overseer._storage import warn
from overseer.errors import OverseerError
from overseer.models._backend import Backend, CapabilityError, backend
from overseer.models._generate import GenerateConfig, Generation
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


def _error_text(exc: Any) -> str:
    """The server's error message from an ``openai.APIStatusError``, on one line."""
    body = getattr(exc, "body", None)
    err = body.get("error", body) if isinstance(body, dict) else body
    msg = err.get("message", err) if isinstance(err, dict) else (err or getattr(exc, "message", "") or str(exc))
    return " ".join(str(msg).split())[:300] or "(no message)"


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token_id(token: str) -> int | None:
    """The id in vLLM's ``token_id:123`` token form, else None."""
    if isinstance(token, str) and token.startswith("token_id:") and token[9:].lstrip("-").isdigit():
        return int(token[9:])
    return None


@backend("openai")
class EndpointBackend(Backend):
    """An OpenAI-compatible server behind :class:`~overseer.models.Backend`.

    Args:
        url: base URL of the API, e.g. ``http://127.0.0.1:8000/v1`` (``/v1`` is added if missing).
        model: the model name the server knows (sent as ``model``).
        api_key_env: name of the environment variable holding the API key; without it no key is
            sent (``$OPENAI_API_KEY`` is never read implicitly). Unset or empty: an error.
        allow_insecure_key: send the key over plain http to a non-loopback host (off: refused).
        tokenizer: a local tokenizer (object, or a model spec / directory to load one from) whose
            chat template renders prompts for the completions API (option scoring, and generation
            with ``generation="completions"``); without one the Human/Assistant format is used.
        generation: ``chat`` (chat API, prefilled assistant turn continued) or ``completions``.
        requests_per_second, concurrency: politeness (requests started per second, in flight).
        timeout_s: per request; max_retries and backoff_s: retries with exponential backoff;
        deadline_s: total time one request may take, retries included.
        cache_dir: where responses are cached (default ``<overseer cache>/endpoint``).
        use_cache: read and write the cache; refresh_cache: write but never read it (``--force``).
        verbose: print a line per retry to stderr.
    """

    kind = "openai"
    capabilities = frozenset({"generate", "score_options", "count_tokens"})
    serves_url = True
    spec_fields = ("url", "model")

    def __init__(
        self,
        url: str,
        model: str,
        api_key_env: str | None = None,
        allow_insecure_key: bool = False,
        tokenizer: Any = None,
        generation: str = "chat",
        requests_per_second: float = 20.0,
        concurrency: int = 4,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        deadline_s: float = 300.0,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        refresh_cache: bool = False,
        verbose: bool = True,
    ):
        self.url = normalize_base_url(url)
        if not model:
            raise OverseerError(f"endpoint {self.url} needs a model name (openai/MODEL@URL)")
        self.model = model
        self.name = model
        if generation not in ("chat", "completions"):
            raise OverseerError(f"unknown endpoint generation mode {generation!r}; allowed: chat, completions")
        self.generation = generation
        for label, value in (("timeout_s", timeout_s), ("deadline_s", deadline_s)):
            if not (isinstance(value, int | float) and value > 0):
                raise OverseerError(f"endpoint {label} must be a positive number of seconds; got {value!r}")
        if not (isinstance(max_retries, int) and max_retries >= 0):
            raise OverseerError(f"endpoint max_retries must be an integer >= 0; got {max_retries!r}")
        self.api_key_env = api_key_env
        self.allow_insecure_key = allow_insecure_key
        self._tokenizer = tokenizer
        self.requests_per_second = requests_per_second
        self.concurrency = concurrency
        self.timeout_s = float(timeout_s)
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
        self._client: Any = None
        self._lock = threading.Lock()
        # A server that never answered and refused the first connection is not there: every request
        # stops at once with one line, instead of each concurrent request retrying with a line per try.
        self._answered = False
        self._unreachable: str | None = None

    @classmethod
    def from_spec(cls, rest: str, **options: Any) -> EndpointBackend:
        """``MODEL@http://HOST:PORT/v1``."""
        at = max(rest.rfind("@http://"), rest.rfind("@https://"))
        if at <= 0:
            raise OverseerError(f"openai backend spec {'openai/' + rest!r} must look like openai/MODEL@http://HOST:PORT/v1")
        return cls(rest[at + 1 :], rest[:at], **options)

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far (retries included, cache hits not)."""
        return self.stats["requests"]

    # ------------------------------------------------------------------ identity

    def identity(self) -> dict[str, Any]:
        """URL, model name and prompt format; never the key."""
        tok = self._tokenizer
        return {
            "backend": "openai",
            "model": self.model,
            "url": self.url,
            "tokenizer": tok if isinstance(tok, str) or tok is None else getattr(tok, "name_or_path", "custom"),
            "generation": self.generation,
        }

    def describe(self) -> dict[str, Any]:
        """Identity plus the chat format used for completions prompts."""
        return {**self.identity(), "chat_format": "chat_template" if self._tokenizer is not None else HUMAN_ASSISTANT}

    # ------------------------------------------------------------------ HTTP

    def _api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise OverseerError(
                f"API key variable {self.api_key_env!r} is unset or empty; export it, or drop --api-key-env "
                "for a server that needs no key"
            )
        if urllib.parse.urlparse(self.url).scheme == "http" and not _is_loopback(self.url) and not (
            self.allow_insecure_key
        ):
            raise OverseerError(
                f"refusing to send the API key from {self.api_key_env} over plain http to {self.url}; "
                "use https, or allow it explicitly (allow_insecure_key / --allow-insecure-key)"
            )
        return key

    def client(self) -> Any:
        """The ``openai.OpenAI`` client (built on first use; our own loop does the retries)."""
        with self._lock:
            if self._client is None:
                try:
                    import openai
                except ImportError as exc:
                    raise OverseerError("the openai backend needs the `openai` package: pip install openai") from exc
                key = self._api_key()
                self._client = openai.OpenAI(
                    api_key=key or "unused", base_url=self.url, organization="", project="",
                    max_retries=0, timeout=self.timeout_s,
                )
                self._headers = {} if key else {"Authorization": openai.omit}
                if self.use_cache:
                    from overseer.models._catalog import cache_root

                    root = Path(self.cache_dir) if self.cache_dir else cache_root() / "endpoint"
                    try:
                        self._cache = ResponseCache(root / "responses.sqlite")
                    except OverseerError as exc:  # read-only, full or damaged: the answers are simply not kept
                        warn(f"cannot use the endpoint response cache {root / 'responses.sqlite'} "
                             f"({io_reason(exc.__cause__ or exc)}); going on without it, so a rerun asks the "
                             "server again")
            return self._client

    def _log(self, message: str) -> None:
        if self.verbose:
            print(f"endpoint {self.url}: {message}", file=sys.stderr, flush=True)

    def _request(self, api: str, params: dict[str, Any], extra: dict[str, Any] | None = None,
                 validate: Callable[[dict[str, Any]], object] | None = None) -> dict[str, Any]:
        """One API call (``completions`` or ``chat``) with caching, rate limiting and bounded retries.

        ``validate(body)`` raises :class:`OverseerError` for an answer the caller cannot use (no
        logprobs, say): such an answer is never cached, and one already in the cache is asked again,
        so a server fixed after a failed run serves the rerun.
        """
        import openai

        client = self.client()
        key = ResponseCache.key(f"{self.url}/{api}", {**params, **(extra or {})})
        if self._cache is not None and not self.refresh_cache:
            try:
                hit = self._cache.get(key)
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
        create = client.completions.create if api == "completions" else client.chat.completions.create
        if self._unreachable:
            raise OverseerError(self._unreachable)
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
                response = create(**params, extra_body=extra or None, extra_headers=self._headers)
            except openai.APIStatusError as exc:
                self._answered = True  # a server is there, even if it cannot answer yet
                message = _error_text(exc)
                if exc.status_code in _RETRY_STATUS:
                    last = f"HTTP {exc.status_code}: {message}"
                    header = exc.response.headers.get("Retry-After", "") if exc.response is not None else ""
                    retry_after = float(header) if header.replace(".", "", 1).isdigit() else 0.0
                    continue
                if exc.status_code in (400, 413, 422) and any(w in message.lower() for w in _CONTEXT_WORDS):
                    raise ItemError(f"endpoint rejected the item: {message}") from exc
                raise OverseerError(
                    f"endpoint {self.url} refused the request (HTTP {exc.status_code}): {message}"
                ) from exc
            except openai.APITimeoutError:
                last = f"no answer within {self.timeout_s:g}s"
                continue
            except openai.APIConnectionError as exc:
                cause = exc.__cause__ or exc
                last = f"cannot connect ({type(cause).__name__}: {' '.join(str(cause).split())[:120]})"
                with self._lock:
                    if not self._answered:
                        self.stats["failed"] += 1
                        self._unreachable = self._unreachable or (
                            f"endpoint {self.url} cannot be reached: {last}; is the server running at that address?"
                        )
                if self._unreachable:
                    raise OverseerError(self._unreachable) from None
                continue
            except openai.APIResponseValidationError as exc:
                raise OverseerError(f"endpoint {self.url} answered with something that is not an API response") from exc
            self._answered = True
            body = response.model_dump() if hasattr(response, "model_dump") else response
            if not isinstance(body, dict) or not body.get("choices"):
                raise OverseerError(f"endpoint {self.url} answered without 'choices' (is it OpenAI-compatible?)")
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
        raise OverseerError(
            f"endpoint {self.url} failed after {attempt + 1} attempts in {spent:.0f}s; last error: {last} "
            "(options timeout_s, max_retries and deadline_s; --endpoint-timeout and --endpoint-retries on the CLI)"
        )

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if self.concurrency <= 1 or len(items) <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(fn, items))

    # ------------------------------------------------------------------ rendering and tokens

    @property
    def tokenizer(self) -> Any:
        """The local tokenizer for completions prompts (loaded on first use), or None."""
        if isinstance(self._tokenizer, str):
            from transformers import AutoTokenizer

            from overseer.models._catalog import resolve_model

            spec = resolve_model(self._tokenizer)
            try:
                if spec.gguf_file:
                    from overseer.models._load import load_model

                    self._tokenizer = load_model(self._tokenizer, device="cpu").tokenizer
                else:
                    self._tokenizer = AutoTokenizer.from_pretrained(spec.source, revision=spec.revision)
            except OSError as exc:
                raise OverseerError(f"cannot load tokenizer {self._tokenizer!r} for endpoint prompts") from exc
        return self._tokenizer

    def render(self, prompt: Chat | str) -> str:
        """Prompt text for the completions API: a local chat template if given, else Human/Assistant."""
        if isinstance(prompt, str):
            return prompt
        if self.tokenizer is not None:
            return format_chat(self.tokenizer, prompt)
        return human_assistant(prompt.messages, prompt.assistant_prefix)

    def supports(self, capability: str) -> bool:
        """Token counting needs a local tokenizer."""
        if capability == "count_tokens":
            return self._tokenizer is not None
        return super().supports(capability)

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the local tokenizer given as ``tokenizer``."""
        if self._tokenizer is None:
            raise CapabilityError(
                f"backend {self.name!r} (openai) cannot count tokens without a local tokenizer (tokenizer=...)"
            )
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # ------------------------------------------------------------------ scoring

    def _score_one(self, job: tuple[str, Sequence[str]]) -> OptionScores:
        prompt, options = job
        if not options or any(not o for o in options):
            return OptionScores(error="an answer option is empty (nothing to score)")
        params = {"model": self.model, "prompt": [prompt + o for o in options], "max_tokens": 1,
                  "temperature": 0, "echo": True, "logprobs": 1}
        try:
            body = self._request("completions", params, validate=lambda answer: self._scores(answer, prompt, options))
        except ItemError as exc:
            return OptionScores(error=str(exc))
        return self._scores(body, prompt, options)

    @staticmethod
    def _scores(body: dict[str, Any], prompt: str, options: Sequence[str]) -> OptionScores:
        """The option scores in a completions answer; :class:`OverseerError` when it cannot give them."""
        choices = sorted(body["choices"], key=lambda c: c.get("index") or 0)
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

    def score_options(self, prompts: Sequence[Chat | str], options: Sequence[Sequence[str]]) -> list[OptionScores]:
        """One completions request per item (all its options), echoing prompt log-probs."""
        jobs = [(self.render(c), list(o)) for c, o in zip(prompts, options, strict=True)]
        return self._map(self._score_one, jobs)

    # ------------------------------------------------------------------ generation

    def _sampling(self, config: GenerateConfig) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model, "max_tokens": config.max_new_tokens,
                                  "temperature": config.temperature, "n": config.n}
        if config.top_p != 1.0:
            params["top_p"] = config.top_p
        if config.seed is not None:
            params["seed"] = config.seed
        if config.stop:
            params["stop"] = list(config.stop)
        return params

    def _generate_one(self, job: tuple[Chat | str, GenerateConfig]) -> list[Generation]:
        prompt, config = job
        try:
            if isinstance(prompt, str) or self.generation == "completions":
                params = {**self._sampling(config), "prompt": self.render(prompt), "logprobs": 1}
                body = self._request("completions", params, {"return_tokens_as_token_ids": True},
                                     validate=lambda answer: _ordered(answer, config.n))
                return [_from_completion(c) for c in _ordered(body, config.n)]
            messages = [dict(m) for m in prompt.messages]
            if prompt.assistant_prefix:
                messages.append({"role": "assistant", "content": prompt.assistant_prefix})
            params = {**self._sampling(config), "messages": messages, "logprobs": True}
            extra = {
                "return_tokens_as_token_ids": True,
                # vLLM's names for "continue the last assistant message"; llama.cpp continues it by default
                "continue_final_message": bool(prompt.assistant_prefix),
                "add_generation_prompt": not prompt.assistant_prefix,
            }
            body = self._request("chat", params, extra, validate=lambda answer: _ordered(answer, config.n))
            return [_from_chat(c) for c in _ordered(body, config.n)]
        except ItemError as exc:  # this item only (e.g. too long): recorded as failed
            return [Generation.failed(str(exc)) for _ in range(config.n)]

    def generate(self, prompts: Sequence[Chat | str], config: GenerateConfig | None = None) -> list[list[Generation]]:
        """``config.n`` completions per prompt: chat API for conversations, completions for strings."""
        config = config or GenerateConfig()
        return self._map(self._generate_one, [(p, config) for p in prompts])


def _ordered(body: dict[str, Any], n: int) -> list[dict[str, Any]]:
    choices = sorted(body["choices"], key=lambda c: c.get("index") or 0)
    if len(choices) != n:
        raise OverseerError(f"endpoint returned {len(choices)} completions where {n} were asked for (n={n})")
    return choices


def _finish(reason: Any) -> str:
    return "length" if reason == "length" else "stop"


def _from_completion(choice: dict[str, Any]) -> Generation:
    logprobs = choice.get("logprobs") or {}
    tokens = logprobs.get("tokens") or []
    ids = [_token_id(t) for t in tokens]
    values = logprobs.get("token_logprobs") or []
    return Generation(
        str(choice.get("text") or ""),
        tuple(i for i in ids if i is not None) if ids and all(i is not None for i in ids) else (),
        tuple(float(v) for v in values if v is not None),
        _finish(choice.get("finish_reason")),
    )


def _from_chat(choice: dict[str, Any]) -> Generation:
    message = choice.get("message") or {}
    content = (choice.get("logprobs") or {}).get("content") or []
    ids = [_token_id(c.get("token")) for c in content]
    return Generation(
        str(message.get("content") or ""),
        tuple(i for i in ids if i is not None) if ids and all(i is not None for i in ids) else (),
        tuple(float(c["logprob"]) for c in content if c.get("logprob") is not None),
        _finish(choice.get("finish_reason")),
    )


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
