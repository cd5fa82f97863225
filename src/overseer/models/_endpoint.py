"""The ``openai`` backend: a model served elsewhere (vLLM, ollama, llama.cpp's server, a hosted API).

Spec: ``openai/MODEL@http://HOST:PORT/v1``. Requests go through the official ``openai`` client.
Generation uses the chat API for conversations (a prefilled assistant start is continued, with
vLLM's ``continue_final_message``) and the completions API for plain-string prompts; sampling
settings, stop strings and seeds are sent as given. Log-probabilities and token ids are read from
either layout a server answers in: the completions form (``tokens``/``token_logprobs``, ids as
vLLM's ``token_id:123`` with ``return_tokens_as_token_ids``) or the chat form (``content`` entries,
ids in their ``id`` field, as llama.cpp's server sends them on both APIs); an answer with text but no
log-probabilities is warned about once per endpoint.

What the server is (:meth:`EndpointClient.server_name`: vLLM, llama.cpp, ollama, OpenAI) is asked once
per endpoint and used wherever servers differ. ``n`` samples of one prompt: a server that draws them
from one seeded generator (vLLM, the loopback test server) gets one request with ``n``. llama.cpp's
server seeds its i-th sample with ``seed + i``, so seeds 0 and 1 would share samples, and it refuses
``n`` above its slot count: it gets one request per sample, with seed ``seed * n + i``, so that
different seeds never share a sample; so does any server that :meth:`EndpointClient.scoring_modes`
found refusing ``n > 1`` (or answering fewer choices). Unseeded samples sent one by one are cached
apart by their index. Only on llama.cpp, sampling also sends ``top_k: 0, min_p: 0`` (its default
truncation off; OpenAI's API rejects unknown fields, so nothing is sent elsewhere), and the prefill
llama.cpp repeats at the start of a chat answer is cut off.

Option scoring uses the completions API with ``echo`` and ``logprobs``: the log-probability of every
token of ``prompt + option`` is returned and the tokens inside the option's characters are summed
(servers without ``echo``, such as llama.cpp's, are refused with a clear message). Servers without
``echo`` can still score options by the next token's ``top_logprobs``
(:meth:`EndpointClient.next_token_logprobs`) or by sampled answers; :meth:`EndpointClient.scoring_modes`
asks the server once which of these it supports.

:class:`EndpointClient` is the client alone: it turns prompts into requests, tries each once and
says which failures another try may cure (connection errors, timeouts, 429 and 5xx).
:class:`EndpointBackend`, what ``openai/...`` specs build, is that client inside
:class:`~overseer.models._guarded.Guarded`, which rate-limits, retries with exponential backoff,
bounds each request by a total deadline and caches answers on disk (see there). No API key is sent
unless the user names the environment variable that holds it (``api_key_env``), and a key is never
sent over plain http to a host other than loopback unless ``allow_insecure_key`` is set.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import urllib.parse
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from overseer.errors import OverseerError
from overseer.models._backend import Backend, CapabilityError, GaveUp, backend
from overseer.models._generate import GenerateConfig, Generation
from overseer.models._guarded import Guarded, ItemError, NotAnswered, ResponseCache, RetryableError
from overseer.models._lm import HUMAN_ASSISTANT, Chat, OptionScores, format_chat, human_assistant
from overseer.models._next_token import SCORING_MODES, ScoringSupport, TopTokens, parse_top_logprobs

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_CONTEXT_WORDS = ("context length", "maximum context", "too long", "too many tokens", "exceeds")
LLAMA_CPP = "llama.cpp"
"""llama.cpp's server by :meth:`EndpointClient.server_name`: samples seeded ``seed + i``, ``n`` capped."""


def normalize_base_url(url: str) -> str:
    """``http://host:8000`` and ``http://host:8000/v1/`` both become ``http://host:8000/v1``."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise OverseerError(f"endpoint {url!r} is not an http(s) URL (e.g. http://127.0.0.1:8000/v1)")
    path = parsed.path.rstrip("/")
    if path in ("", "/"):
        path = "/v1"
    return urllib.parse.urlunparse(parsed._replace(path=path, params="", query="", fragment=""))


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


class EndpointClient(Backend):
    """An OpenAI-compatible server behind :class:`~overseer.models.Backend`, each request tried once.

    Wrap it in :class:`~overseer.models._guarded.Guarded` for caching, rate limiting and retries
    (:class:`EndpointBackend` does). Arguments are :class:`EndpointBackend`'s of the same names.
    """

    kind = "openai"
    capabilities = frozenset({"generate", "score_options", "count_tokens", "next_token"})
    spec_fields = ("url", "model")

    def __init__(
        self,
        url: str,
        model: str,
        api_key_env: str | None = None,
        allow_insecure_key: bool = False,
        tokenizer: Any = None,
        generation: str = "chat",
        concurrency: int = 4,
        timeout_s: float = 60.0,
    ):
        self.url = normalize_base_url(url)
        if not model:
            raise OverseerError(f"endpoint {self.url} needs a model name (openai/MODEL@URL)")
        self.model = model
        self.name = model
        if generation not in ("chat", "completions"):
            raise OverseerError(f"unknown endpoint generation mode {generation!r}; allowed: chat, completions")
        self.generation = generation
        if not (isinstance(timeout_s, int | float) and timeout_s > 0):
            raise OverseerError(f"endpoint timeout_s must be a positive number of seconds; got {timeout_s!r}")
        self.api_key_env = api_key_env
        self.allow_insecure_key = allow_insecure_key
        self._tokenizer = tokenizer
        self.concurrency = concurrency
        self.timeout_s = float(timeout_s)
        self._client: Any = None
        self._lock = threading.Lock()
        self._server: str | None = None  # what the server calls itself (server_name), once it has answered
        self._server_known = False
        self._warned_logprobs = False
        self.one_sample_per_request = False  # set by scoring_modes() when the server refuses n > 1

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

    def where(self) -> str:
        """``endpoint URL``, as every message about its requests names it."""
        return f"endpoint {self.url}"

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
        """The ``openai.OpenAI`` client (built on first use; retries are the wrapper's, not the SDK's)."""
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
            return self._client

    def _send(self, api: str, params: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
        """One try of an API call; failures another try may cure are :class:`RetryableError`."""
        import openai

        client = self.client()
        create = client.completions.create if api == "completions" else client.chat.completions.create
        try:
            response = create(**params, extra_body=extra or None, extra_headers=self._headers)
        except openai.APIStatusError as exc:
            message = _error_text(exc)
            if exc.status_code in _RETRY_STATUS:
                header = exc.response.headers.get("Retry-After", "") if exc.response is not None else ""
                raise RetryableError(
                    f"HTTP {exc.status_code}: {message}", answered=True,
                    retry_after=float(header) if header.replace(".", "", 1).isdigit() else 0.0,
                ) from None
            if exc.status_code in (400, 413, 422) and any(w in message.lower() for w in _CONTEXT_WORDS):
                raise ItemError(f"endpoint rejected the item: {message}") from exc
            raise OverseerError(
                f"endpoint {self.url} refused the request (HTTP {exc.status_code}): {message}"
            ) from exc
        except openai.APITimeoutError:
            raise RetryableError(f"no answer within {self.timeout_s:g}s") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise RetryableError(
                f"cannot connect ({type(cause).__name__}: {' '.join(str(cause).split())[:120]})", refused=True
            ) from None
        except openai.APIResponseValidationError as exc:
            raise NotAnswered(f"endpoint {self.url} answered with something that is not an API response") from exc
        body = response.model_dump() if hasattr(response, "model_dump") else response
        if not isinstance(body, dict) or not body.get("choices"):
            raise OverseerError(f"endpoint {self.url} answered without 'choices' (is it OpenAI-compatible?)")
        return body

    def _request(self, api: str, params: dict[str, Any], extra: dict[str, Any] | None = None,
                 validate: Callable[[dict[str, Any]], object] | None = None, sample: int | None = None
                 ) -> dict[str, Any]:
        """One API call (``completions`` or ``chat``) through :meth:`request`, keyed by URL and body.

        ``sample`` tells apart the cached answers of identical unseeded requests for one prompt's samples.
        """
        self.client()  # a missing package or a refused key is one line before anything else
        where = f"{self.url}/{api}" if sample is None else f"{self.url}/{api}#sample{sample}"
        key = ResponseCache.key(where, {**params, **(extra or {})})
        return self.request(key, lambda: self._send(api, params, extra), validate)

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

    def _plain_sampling(self, config: GenerateConfig) -> dict[str, Any]:
        """llama.cpp samples from a top-k 40, top-p 0.95, min-p 0.05 truncation unless told not to.

        Sent to llama.cpp only: OpenAI's API refuses fields it does not know, and ollama ignores them.
        """
        if config.greedy or self.server_name() != LLAMA_CPP:
            return {}
        return {"top_k": 0, "min_p": 0.0, "top_p": config.top_p}

    def _generate_one(self, job: tuple[Chat | str, GenerateConfig]) -> list[Generation]:
        prompt, config = job
        if self._per_sample(config):
            # llama.cpp seeds sample i with seed + i: seeds s*n .. s*n+n-1 keep different seeds apart
            samples = []
            for i in range(config.n):
                seed = None if config.seed is None else config.seed * config.n + i
                samples += self._generate_once(prompt, replace(config, n=1, seed=seed),
                                                None if seed is not None else i)
            return samples
        return self._generate_once(prompt, config)

    def _per_sample(self, config: GenerateConfig) -> bool:
        """Whether the ``n`` samples go in ``n`` requests: llama.cpp's server, or one found to refuse ``n``."""
        return config.n > 1 and (self.one_sample_per_request or self.server_name() == LLAMA_CPP)

    def _generate_once(self, prompt: Chat | str, config: GenerateConfig, sample: int | None = None) -> list[Generation]:
        """``config.n`` samples in one request (``sample`` keys an unseeded one of several in the cache)."""
        try:
            if isinstance(prompt, str) or self.generation == "completions":
                params = {**self._sampling(config), "prompt": self.render(prompt), "logprobs": 1}
                body = self._request("completions", params,
                                     {"return_tokens_as_token_ids": True, **self._plain_sampling(config)},
                                     validate=lambda answer: _ordered(answer, config.n), sample=sample)
                return self._checked([_from_completion(c) for c in _ordered(body, config.n)])
            messages = [dict(m) for m in prompt.messages]
            if prompt.assistant_prefix:
                messages.append({"role": "assistant", "content": prompt.assistant_prefix})
            params = {**self._sampling(config), "messages": messages, "logprobs": True}
            extra = {
                **self._plain_sampling(config),
                "return_tokens_as_token_ids": True,
                # vLLM's names for "continue the last assistant message"; llama.cpp continues it by default
                "continue_final_message": bool(prompt.assistant_prefix),
                "add_generation_prompt": not prompt.assistant_prefix,
            }
            body = self._request("chat", params, extra, validate=lambda answer: _ordered(answer, config.n),
                                 sample=sample)
            generations = [_from_chat(c) for c in _ordered(body, config.n)]
            if prompt.assistant_prefix and self.server_name() == LLAMA_CPP:
                generations = [_without_prefix(g, prompt.assistant_prefix) for g in generations]
            return self._checked(generations)
        except ItemError as exc:  # this item only (e.g. too long): recorded as failed
            return [Generation.failed(str(exc)) for _ in range(config.n)]

    def _checked(self, generations: list[Generation]) -> list[Generation]:
        """The generations, with one warning per endpoint when text came back without its log-probabilities."""
        if not self._warned_logprobs and any(g.text and not g.logprobs for g in generations):
            self._warned_logprobs = True
            warnings.warn(f"endpoint {self.url} answered without log-probabilities; the generations' logprobs "
                          "are empty", stacklevel=2)
        return generations

    def generate(self, prompts: Sequence[Chat | str], config: GenerateConfig | None = None) -> list[list[Generation]]:
        """``config.n`` completions per prompt: chat API for conversations, completions for strings.

        llama.cpp's server, and one that :meth:`scoring_modes` found refusing ``n > 1``, get ``n`` requests
        of one sample each: seeded ``seed * n + i``, or unseeded and cached apart by ``i``.
        """
        config = config or GenerateConfig()
        return self._map(self._generate_one, [(p, config) for p in prompts])

    # ------------------------------------------------------------------ without echo: first token, what it supports

    def _next_token_request(self, prompt: Chat | str, top_k: int) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        """The API, body and extra body that ask for one token and its ``top_k`` alternatives after ``prompt``."""
        base = {"model": self.model, "max_tokens": 1, "temperature": 0}
        if isinstance(prompt, str) or self.generation == "completions":
            return "completions", {**base, "prompt": self.render(prompt), "logprobs": top_k}, None
        messages = [dict(m) for m in prompt.messages]
        if prompt.assistant_prefix:
            messages.append({"role": "assistant", "content": prompt.assistant_prefix})
        extra = {"continue_final_message": bool(prompt.assistant_prefix),
                 "add_generation_prompt": not prompt.assistant_prefix}
        return "chat", {**base, "messages": messages, "logprobs": True, "top_logprobs": top_k}, extra

    def _next_token_one(self, job: tuple[Chat | str, int]) -> TopTokens:
        prompt, top_k = job
        api, params, extra = self._next_token_request(prompt, top_k)

        def read(body: dict[str, Any]) -> dict[str, float]:
            top = parse_top_logprobs(_ordered(body, 1)[0])
            if not top:
                raise OverseerError(f"endpoint {self.url} answered without top_logprobs for the next token; "
                                    "it cannot score options by their first token")
            return top

        try:
            return TopTokens(read(self._request(api, params, extra, validate=read)))
        except ItemError as exc:
            return TopTokens(error=str(exc))

    def next_token_logprobs(self, prompts: Sequence[Chat | str], top_k: int = 20) -> list[TopTokens]:
        """The next token's ``top_k`` log-probabilities after each prompt (the generation API, one token)."""
        return self._map(self._next_token_one, [(p, top_k) for p in prompts])

    def tokens_after(self, prompt: Chat | str, option: str) -> int | None:
        """Tokens ``option`` adds after ``prompt`` by the local tokenizer; None without one."""
        if self._tokenizer is None:
            return None
        from overseer.models._next_token import tokens_after

        return tokens_after(self.tokenizer, self.render(prompt), option)

    def _try(self, api: str, params: dict[str, Any], extra: dict[str, Any] | None,
             check: Callable[[dict[str, Any]], object]) -> str | None:
        """None when the request is answered and passes ``check``; else why not (a refusal, an unusable answer).

        A server that does not answer at all stops here (:class:`GaveUp`): that says nothing of what it supports.
        """
        try:
            self._request(api, params, extra, validate=check)
        except GaveUp:
            raise
        except (OverseerError, ItemError) as exc:
            return " ".join(str(exc).replace(f"endpoint {self.url} ", "").split())[:200]
        return None

    def scoring_modes(self) -> ScoringSupport:
        """What this server can score with, found by two or three one-token requests.

        They go through :meth:`request` like any other, so a supported mode's answer is cached per
        endpoint (a rerun asks again only what the server refused) and counted in the request stats.
        """
        prompt, option = "The sky is", " blue"
        missing: dict[str, str] = {}
        full = self._try("completions", {"model": self.model, "prompt": [prompt + option], "max_tokens": 1,
                                         "temperature": 0, "echo": True, "logprobs": 1},
                         None, lambda body: self._scores(body, prompt, [option]))
        if full:
            missing["full"] = full
        api, params, extra = self._next_token_request(Chat.user("Say yes or no.", assistant_prefix="My answer:"), 5)

        def has_top(body: dict[str, Any]) -> None:
            if not parse_top_logprobs(_ordered(body, 1)[0]):
                raise OverseerError("answered without top_logprobs")

        first = self._try(api, params, extra, has_top)
        if first:
            missing["first_token"] = first
            plain = {k: v for k, v in params.items() if k not in ("logprobs", "top_logprobs")}
            sampled = self._try(api, plain, extra, lambda body: _ordered(body, 1))
            if sampled:
                missing["sampled"] = sampled
        modes = tuple(m for m in SCORING_MODES if m not in missing)
        server = self.server_name()
        if "sampled" in modes and server != LLAMA_CPP:  # llama.cpp always gets one request per sample
            several = {k: v for k, v in params.items() if k not in ("logprobs", "top_logprobs")}
            self.one_sample_per_request = self._try(api, {**several, "n": 2, "temperature": 1.0}, extra,
                                                    lambda body: _ordered(body, 2)) is not None
        return ScoringSupport(modes, server=server, where=self.where(), missing=missing)

    def server_name(self) -> str | None:
        """What the server says it is (vLLM, llama.cpp, ollama, OpenAI), where it says; None otherwise.

        Read from the ``server`` header and ``owned_by`` of ``GET /v1/models``, then llama.cpp's
        ``GET /props`` and ollama's ``GET /api/version``, each briefly; silence is no error. Asked once
        per endpoint: the answer is kept once ``/v1/models`` has answered at all, so a server that
        comes up later is asked again. Seed spacing, llama.cpp's sampling fields and the messages
        that name the server all read this one answer.
        """
        with self._lock:
            if self._server_known:
                return self._server
        host = urllib.parse.urlparse(self.url).hostname or ""
        name = "OpenAI" if host == "openai.com" or host.endswith(".openai.com") else self._ask_server_name()
        if name is _UNREACHABLE:
            return None
        with self._lock:
            self._server, self._server_known = name, True
            return self._server

    def _ask_server_name(self) -> Any:
        """:meth:`server_name`'s answer from the server; ``_UNREACHABLE`` when ``/v1/models`` got no answer."""
        import httpx

        key = self._api_key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        root = self.url[: -len("/v1")] if self.url.endswith("/v1") else self.url

        def get(url: str) -> httpx.Response | None:
            try:
                return httpx.get(url, headers=headers, timeout=min(self.timeout_s, 5.0))
            except httpx.HTTPError:
                return None

        answer = get(f"{self.url}/models")
        if answer is None:
            return _UNREACHABLE
        name = _server_from_header(answer.headers.get("server", ""))
        if name:
            return name
        try:
            owners = {str(m.get("owned_by", "")).lower() for m in answer.json().get("data") or []}
        except (ValueError, AttributeError):
            owners = set()
        for owner, name in _OWNERS.items():
            if owner in owners:
                return name
        props = get(f"{root}/props")
        if props is not None and props.status_code == 200 and "default_generation_settings" in props.text:
            return LLAMA_CPP
        version = get(f"{root}/api/version")
        if version is not None and version.status_code == 200 and '"version"' in version.text:
            return "ollama"
        return None


@backend("openai")
class EndpointBackend(Guarded):
    """An OpenAI-compatible server behind :class:`~overseer.models.Backend`: the client, guarded.

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

    The first six and ``concurrency`` and ``timeout_s`` go to :class:`EndpointClient`, the rest to
    :class:`~overseer.models._guarded.Guarded`, with the defaults given there.
    """

    kind = "openai"
    capabilities = EndpointClient.capabilities
    serves_url = True
    spec_fields = ("url", "model")

    def __init__(self, url: str, model: str, **options: Any):
        client_options = set(EndpointClient.options())
        unknown = sorted(set(options) - set(self.options()))
        if unknown:
            raise TypeError(f"EndpointBackend() got an unexpected keyword argument {unknown[0]!r}")
        client = EndpointClient(url, model, **{k: v for k, v in options.items() if k in client_options})
        super().__init__(client, **{k: v for k, v in options.items() if k not in client_options})

    @classmethod
    def options(cls) -> list[str]:
        """The client's options, then the wrapper's (see the class docstring)."""
        return [*EndpointClient.options(), *(name for name in Guarded.options() if name != "inner")]

    @classmethod
    def from_spec(cls, rest: str, **options: Any) -> EndpointBackend:
        """``MODEL@http://HOST:PORT/v1``."""
        at = max(rest.rfind("@http://"), rest.rfind("@https://"))
        if at <= 0:
            raise OverseerError(f"openai backend spec {'openai/' + rest!r} must look like openai/MODEL@http://HOST:PORT/v1")
        return cls(rest[at + 1 :], rest[:at], **options)


_UNREACHABLE = object()
"""What :meth:`EndpointClient._ask_server_name` returns when the server did not answer at all."""

# ``owned_by`` in ``GET /v1/models`` as each server writes it
_OWNERS = {"vllm": "vLLM", "llamacpp": LLAMA_CPP, "library": "ollama", "ollama": "ollama", "openai": "OpenAI",
           "system": "OpenAI"}


def _server_from_header(value: str) -> str | None:
    """The server named in a ``server:`` header (``llama.cpp``, ``ollama``, ``vllm``), else None."""
    low = value.lower()
    for word, name in (("llama.cpp", LLAMA_CPP), ("llama-server", LLAMA_CPP), ("ollama", "ollama"),
                       ("vllm", "vLLM"), ("openai", "OpenAI")):
        if word in low:
            return name
    return None


def _ordered(body: dict[str, Any], n: int) -> list[dict[str, Any]]:
    choices = sorted(body["choices"], key=lambda c: c.get("index") or 0)
    if len(choices) != n:
        raise OverseerError(f"endpoint returned {len(choices)} completions where {n} were asked for (n={n})")
    return choices


def _without_prefix(gen: Generation, prefix: str) -> Generation:
    """The continuation alone: llama.cpp's server answers a prefilled assistant turn with the prefill included."""
    if prefix and gen.text.startswith(prefix):
        return replace(gen, text=gen.text[len(prefix):])
    return gen


def _finish(reason: Any) -> str:
    return "length" if reason == "length" else "stop"


def _from_completion(choice: dict[str, Any]) -> Generation:
    logprobs = choice.get("logprobs") or {}
    if isinstance(logprobs.get("content"), list):  # llama.cpp answers completions in the chat layout
        ids, values = _content_tokens(logprobs["content"])
    else:
        ids = [_token_id(t) for t in logprobs.get("tokens") or []]
        values = [float(v) for v in logprobs.get("token_logprobs") or [] if v is not None]
    return Generation(str(choice.get("text") or ""), _all_ids(ids), tuple(values), _finish(choice.get("finish_reason")))


def _from_chat(choice: dict[str, Any]) -> Generation:
    message = choice.get("message") or {}
    ids, values = _content_tokens((choice.get("logprobs") or {}).get("content") or [])
    return Generation(str(message.get("content") or ""), _all_ids(ids), tuple(values),
                      _finish(choice.get("finish_reason")))


def _content_tokens(content: list[Any]) -> tuple[list[int | None], list[float]]:
    """Token ids and log-probs of chat-layout ``logprobs.content`` entries.

    The id is the entry's ``id`` (llama.cpp) or vLLM's ``token_id:123`` token text.
    """
    entries = [c for c in content if isinstance(c, dict)]
    ids = [c["id"] if isinstance(c.get("id"), int) and not isinstance(c.get("id"), bool) else _token_id(c.get("token"))
           for c in entries]
    return ids, [float(c["logprob"]) for c in entries if c.get("logprob") is not None]


def _all_ids(ids: list[int | None]) -> tuple[int, ...]:
    """The ids when every token has one, else none (a partial list would misalign with the text)."""
    return tuple(i for i in ids if i is not None) if ids and all(i is not None for i in ids) else ()


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
