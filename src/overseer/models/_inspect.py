"""The ``overseer`` model provider for inspect_ai: any inspect task on any model Overseer can load.

``inspect eval TASK --model overseer/SPEC`` (or ``get_model("overseer/SPEC")``) runs the task on
``get_backend(SPEC)``: a packaged model or ladder rung (``overseer/smollm2-135m-l8``), a hub id
(``overseer/hf/gpt2``), a local directory (``overseer/./my-model``), an OpenAI-compatible server
(``overseer/openai/NAME@http://127.0.0.1:8000/v1``) or the scripted mock (``overseer/mock``).
Model args (``-M key=value``) are the backend's options (``device``, ``dtype``, ``batch_size``,
``api_key_env``, ...), checked by :func:`~overseer.models.get_backend`.

Everything inspect would otherwise look up elsewhere comes from the model itself, so an eval is
fully offline unless the spec names a server:

* token counts (:meth:`OverseerModelAPI.count_tokens`, ``count_text_tokens``, ``tokenize``) use the
  model's own tokenizer, never inspect's default tiktoken vocabulary (a download);
* the context window and default output limit are declared from the model's config
  (``set_model_info`` under the model's name, plus :meth:`OverseerModelAPI.max_tokens`), so inspect's
  model database is never consulted for them;
* a completion that would run past the context window is cut to fit and reported as
  ``model_length``; a prompt that alone fills the window gets an empty ``model_length`` answer.

Each backend is built and loaded once per process and shared by every inspect ``Model`` naming it.
Concurrent ``generate`` calls are queued to one worker thread per backend, which runs everything
queued with the same settings as one batched :meth:`~overseer.models.Backend.generate` call.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import anyio
from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    Logprob,
    Logprobs,
    ModelAPI,
    ModelCall,
    ModelInfo,
    ModelOutput,
    ModelUsage,
    set_model_info,
)
from inspect_ai.model._model_info import MODEL_INFO_LOOKUP_API_KEY
from inspect_ai.tool import ToolChoice, ToolInfo

from overseer.errors import OverseerError
from overseer.models._backend import Backend, get_backend, split_spec
from overseer.models._generate import GenerateConfig as OverseerConfig
from overseer.models._generate import Generation
from overseer.models._lm import Chat

logger = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 2048
"""Output limit when a task sets none (inspect's own default for local models), cut to the context."""

_CONTEXT_WORDS = ("context length", "maximum context", "too long", "too many tokens", "context is")
_UNSUPPORTED = ("top_k", "frequency_penalty", "presence_penalty", "logit_bias", "best_of", "top_logprobs",
                "prompt_logprobs", "response_schema", "reasoning_effort", "reasoning_tokens")
_warned: set[str] = set()
_IDLE_EXIT_S = 30.0  # a backend's worker thread ends after this long without requests (a new one starts on demand)


# --------------------------------------------------------------------------- conversion


def to_chat(messages: Sequence[ChatMessage]) -> Chat:
    """An Overseer :class:`~overseer.models.Chat` from inspect's messages.

    System, user, assistant and tool messages keep their roles; a tool message keeps its
    ``tool_call_id`` and function ``name``. Tool calls an assistant made are written into its text
    (``[tool call ID: FUNCTION({json args})]``), since Overseer's models take text only. A final
    assistant message is the prefilled start of the answer, which the model continues.
    """
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not isinstance(message.content, str):
            for part in message.content:
                if part.type not in ("text", "reasoning"):
                    raise OverseerError(
                        f"message {i} ({message.role}) has {part.type} content; overseer models take text only"
                    )
        text = message.text
        turn: dict[str, Any] = {"role": message.role, "content": text}
        if isinstance(message, ChatMessageAssistant) and message.tool_calls:
            calls = [f"[tool call {c.id}: {c.function}({json.dumps(c.arguments)})]" for c in message.tool_calls]
            turn["content"] = "\n".join(([text] if text else []) + calls)
        if message.role == "tool":
            if message.tool_call_id:
                turn["tool_call_id"] = message.tool_call_id
            if message.function:
                turn["name"] = message.function
            if message.error and not text:
                turn["content"] = f"Error: {message.error.message}"
        turns.append(turn)
    prefix = ""
    if turns and turns[-1]["role"] == "assistant":
        prefix = turns.pop()["content"]
    return Chat.of(turns, prefix)


def to_overseer_config(config: GenerateConfig, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> OverseerConfig:
    """Overseer's sampling settings from inspect's ``GenerateConfig``.

    ``max_tokens`` becomes ``max_new_tokens``, ``num_choices`` becomes ``n`` and ``stop_seqs``
    becomes ``stop``; ``temperature``, ``top_p`` and ``seed`` keep their names. Unset values take
    Overseer's meaning: greedy decoding (temperature 0), top-p 1, one choice, no seed. Settings
    Overseer's backends do not implement (``top_k``, penalties, ...) are ignored with a warning.
    """
    for name in _UNSUPPORTED:
        if getattr(config, name, None) not in (None, False) and name not in _warned:
            _warned.add(name)
            logger.warning(f"overseer models ignore the generate setting {name}={getattr(config, name)!r}")
    return OverseerConfig(
        max_new_tokens=config.max_tokens if config.max_tokens is not None else default_max_tokens,
        temperature=config.temperature if config.temperature is not None else 0.0,
        top_p=config.top_p if config.top_p is not None else 1.0,
        n=config.num_choices if config.num_choices is not None else 1,
        seed=config.seed,
        stop=tuple(s for s in (config.stop_seqs or ()) if s),
    )


# --------------------------------------------------------------------------- one shared runner per backend


@dataclass
class _Job:
    chat: Chat
    config: OverseerConfig
    want_tokens: bool
    future: Future[_Outcome] = field(default_factory=Future)


@dataclass
class _Outcome:
    """What the worker hands back for one request."""

    prompt: str
    config: OverseerConfig
    prompt_tokens: int | None
    generations: list[Generation] = field(default_factory=list)
    output_tokens: list[int | None] = field(default_factory=list)
    token_texts: list[list[str]] | None = None
    cut_to_context: bool = False
    too_long: str | None = None
    seconds: float = 0.0


class _Runner:
    """One backend, loaded once, used from one worker thread that batches concurrent requests."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.lock = threading.RLock()
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()  # not self.lock, which the worker holds while it generates

    # ---- what the backend knows, always under the lock (tokenizers are not thread-safe)

    def load(self) -> None:
        """Load a local model now (weights, tokenizer), so errors show before the eval starts."""
        if self.backend.supports("loaded_model"):
            with self.lock:
                lm = self.backend.loaded
            if lm.kind != "causal":
                raise OverseerError(f"model {self.backend.name!r} is an encoder; inspect tasks need a causal LM")

    @property
    def tokenizer(self) -> Any:
        """The model's own tokenizer, when the backend has one here."""
        if self.backend.supports("loaded_model"):
            return self.backend.loaded.tokenizer
        return getattr(self.backend, "tokenizer", None)

    def count_text(self, text: str) -> int | None:
        """Tokens in ``text`` by the backend's tokenizer, or None when it has none."""
        with self.lock:
            if self.backend.supports("count_tokens"):
                return self.backend.count_tokens(text)
        return None

    def count_prompt(self, prompt: str) -> int | None:
        """Tokens the model is given for a rendered prompt (special tokens included, as generation adds them)."""
        with self.lock:
            if self.backend.supports("loaded_model"):
                from overseer.models._lm import encode_prompt

                return len(encode_prompt(self.backend.loaded.tokenizer, prompt))
        return self.count_text(prompt)

    def token_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` by the model's own tokenizer."""
        with self.lock:
            tok = self.tokenizer
            if tok is None:
                raise NotImplementedError(f"backend {self.backend.name!r} has no local tokenizer")
            return list(tok(text, add_special_tokens=False)["input_ids"])

    # ---- generation

    async def generate(self, chat: Chat, config: OverseerConfig, want_tokens: bool) -> _Outcome:
        """Queue one request for the worker and wait for it without blocking the event loop."""
        job = _Job(chat, config, want_tokens)
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name=f"overseer-{self.backend.name}", daemon=True)
                self._thread.start()
            self._queue.put(job)
        delay = 0.002
        while not job.future.done():
            await anyio.sleep(delay)
            delay = min(delay * 1.5, 0.05)
        return job.future.result()

    def _work(self) -> None:
        while True:
            try:
                jobs = [self._queue.get(timeout=_IDLE_EXIT_S)]
            except queue.Empty:
                with self._start_lock:  # generate() queues under this lock, so no job is left behind
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            while True:  # everything queued meanwhile joins this batch
                try:
                    jobs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._run(jobs)
            except BaseException as exc:  # never leave a caller waiting
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)

    def _prepare(self, job: _Job, limit: int | None) -> _Outcome:
        """Render the prompt, count it, and cut the output limit so prompt + completion fit the context."""
        prompt = self.backend.render(job.chat)
        outcome = _Outcome(prompt, job.config, self.count_prompt(prompt))
        if limit and outcome.prompt_tokens is not None:
            room = limit - outcome.prompt_tokens
            if room < 1:
                outcome.too_long = f"prompt has {outcome.prompt_tokens} tokens; the model's context is {limit}"
            elif room < job.config.max_new_tokens:
                outcome.config = replace(job.config, max_new_tokens=room)
                outcome.cut_to_context = True
        return outcome

    def _run(self, jobs: list[_Job]) -> None:
        """Generate for every job; jobs with the same (cut) settings share one backend call."""
        groups: dict[OverseerConfig, list[tuple[_Job, _Outcome]]] = {}
        with self.lock:
            limit = self.backend.context_length
            for job in jobs:
                try:
                    outcome = self._prepare(job, limit)
                except Exception as exc:  # this request only (e.g. its chat template failed)
                    job.future.set_exception(exc)
                    continue
                if outcome.too_long is not None:
                    job.future.set_result(outcome)
                else:
                    groups.setdefault(outcome.config, []).append((job, outcome))
            for config, items in groups.items():
                started = time.perf_counter()
                try:
                    results = self.backend.generate([job.chat for job, _ in items], config)
                    seconds = time.perf_counter() - started
                    for (job, outcome), generations in zip(items, results, strict=True):
                        outcome.generations = list(generations)
                        outcome.seconds = seconds
                        outcome.output_tokens = [self._output_tokens(g) for g in generations]
                        if job.want_tokens:
                            outcome.token_texts = [self._token_texts(g) for g in generations]
                        job.future.set_result(outcome)
                except Exception as exc:
                    for job, _ in items:
                        if not job.future.done():
                            job.future.set_exception(exc)

    def _output_tokens(self, generation: Generation) -> int | None:
        if generation.token_ids:
            return len(generation.token_ids)
        return self.count_text(generation.text) if generation.text else 0

    def _token_texts(self, generation: Generation) -> list[str]:
        tok = self.tokenizer
        if generation.token_ids and tok is not None and hasattr(tok, "decode"):
            return [tok.decode([i]) for i in generation.token_ids]
        return [str(i) for i in generation.token_ids]


_RUNNERS: dict[str, _Runner] = {}
_RUNNERS_LOCK = threading.Lock()


def shared_runner(spec: str, options: dict[str, Any]) -> _Runner:
    """The process-wide runner for ``spec`` with ``options``, built and loaded on first use.

    The mock backend (scripted, stateful) and backends given options that are not plain JSON
    (a tokenizer object, say) are built anew for each caller.
    """
    kind, _ = split_spec(spec)
    try:
        key = json.dumps([spec, options], sort_keys=True) if kind != "mock" else None
    except TypeError:
        key = None
    with _RUNNERS_LOCK:
        if key is not None and key in _RUNNERS:
            return _RUNNERS[key]
        runner = _Runner(get_backend(spec, **options))
        runner.load()
        if key is not None:
            _RUNNERS[key] = runner
        return runner


# --------------------------------------------------------------------------- the provider


class OverseerModelAPI(ModelAPI):
    """An Overseer backend behind inspect's ``ModelAPI``.

    Args:
        model_name: the Overseer model spec (everything after ``overseer/``).
        base_url: for ``openai/NAME`` specs, the server URL (same as ``openai/NAME@URL``).
        api_key: refused: Overseer reads keys only from the variable named by ``api_key_env``.
        config: inspect's generate config for this model (used per call, not at construction).
        **model_args: options of the backend (``device``, ``dtype``, ``batch_size``, ``api_key_env``...).
    """

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),  # noqa: B008 - inspect's signature
        **model_args: Any,
    ) -> None:
        super().__init__(model_name=model_name, base_url=base_url, api_key=None, api_key_vars=[], config=config)
        if api_key is not None and api_key != MODEL_INFO_LOOKUP_API_KEY:
            raise OverseerError(
                "overseer models take no API key directly; put it in an environment variable and pass "
                "-M api_key_env=NAME"
            )
        spec = model_name
        if base_url:
            if not spec.startswith("openai/") or "@" in spec:
                raise OverseerError(
                    f"a base URL applies only to overseer/openai/NAME specs without @URL; got {spec!r}"
                )
            spec = f"{spec}@{base_url}"
        self.spec = spec
        self.runner = shared_runner(spec, dict(model_args))
        self.backend = self.runner.backend
        context = self.backend.context_length
        self._context_length = context
        set_model_info(self.canonical_name(), ModelInfo(
            organization="overseer", model=model_name, context_length=context, output_tokens=self.max_tokens(),
        ))

    # ---- names and limits (never inspect's model database)

    def canonical_name(self) -> str:
        """``overseer/SPEC``: the name model info is declared under."""
        return f"overseer/{self.model_name}"

    def connection_key(self) -> str:
        """Each backend has its own pool of connections (two models of one eval do not share one)."""
        return self.spec

    def max_tokens(self) -> int | None:
        """Default output limit: 2,048 tokens, or the context window when smaller."""
        if self._context_length:
            return min(DEFAULT_MAX_TOKENS, self._context_length)
        return DEFAULT_MAX_TOKENS

    def max_connections(self) -> int:
        """Concurrent requests: a local model's batch size, a server backend's concurrency."""
        for name in ("batch_size", "concurrency"):
            value = getattr(self.backend, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return 10

    # ---- token counting with the model's own tokenizer

    async def count_tokens(self, input: str | list[ChatMessage], config: GenerateConfig | None = None) -> int:
        """Tokens of a text, or of a conversation as the model is given it (chat template included)."""
        if isinstance(input, str):
            return await self.count_text_tokens(input)
        try:
            chat = to_chat(input)
        except OverseerError:  # media content: inspect's per-item estimates, our text counts
            return await super().count_tokens(input, config)

        def count() -> int:
            with self.runner.lock:
                prompt = self.backend.render(chat)
            counted = self.runner.count_prompt(prompt)
            return counted if counted is not None else _estimate(prompt)

        return max(1, await anyio.to_thread.run_sync(count))

    async def count_text_tokens(self, text: str) -> int:
        """Tokens by the model's tokenizer; without one (a server), a generous estimate (no download)."""

        def count() -> int:
            counted = self.runner.count_text(text)
            return counted if counted is not None else _estimate(text)

        return max(1, await anyio.to_thread.run_sync(count))

    async def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` by the model's own tokenizer."""
        return await anyio.to_thread.run_sync(self.runner.token_ids, text)

    # ---- generation

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> tuple[ModelOutput | Exception, ModelCall]:
        """Run one request through the shared backend; failures come back as the error inspect raises."""
        if tools and tool_choice != "none":
            # Raised, not returned: inspect would wrap a returned error with the request dump, and
            # this one line is all there is to say.
            raise OverseerError(self._no_tools(tools))
        request: dict[str, Any] = {"model": self.spec, "backend": self.backend.kind}
        try:
            chat = to_chat(input)
            request["messages"] = [dict(m) for m in chat.messages]
            request["assistant_prefix"] = chat.assistant_prefix
            settings = to_overseer_config(config, self.max_tokens() or DEFAULT_MAX_TOKENS)
            outcome = await self.runner.generate(chat, settings, bool(config.logprobs))
        except Exception as exc:
            return exc, ModelCall.create(request, None)
        request["prompt"] = outcome.prompt
        request["config"] = {**asdict(outcome.config), "stop": list(outcome.config.stop)}
        response = {"choices": [
            {"text": g.text, "finish_reason": g.finish_reason, "error": g.error, "num_tokens": n}
            for g, n in zip(outcome.generations, outcome.output_tokens, strict=True)
        ]}
        if outcome.too_long is not None:
            call = ModelCall.create(request, {"error": outcome.too_long})
            return ModelOutput.from_content(self.model_name, "", stop_reason="model_length"), call
        call = ModelCall.create(request, response, time=outcome.seconds)
        failed = [g.error for g in outcome.generations if not g.ok]
        if failed:
            if all(any(w in str(e).lower() for w in _CONTEXT_WORDS) for e in failed):
                return ModelOutput.from_content(self.model_name, "", stop_reason="model_length"), call
            return OverseerError(f"{self.spec}: {failed[0]}"), call
        return self._output(outcome), call

    def _no_tools(self, tools: list[ToolInfo]) -> str:
        """Why a task that offers tools cannot run on this provider, and what can run it."""
        names = ", ".join(t.name for t in tools)
        message = f"overseer/{self.spec}: Overseer's provider does not call tools, and the task offers {names}"
        if self.backend.kind == "openai":
            url = getattr(self.backend, "url", "URL")
            model = getattr(self.backend, "model", "NAME")
            return (f"{message}; inspect's own provider does: --model openai-api/local/{model} "
                    f"--model-base-url {url} (with LOCAL_API_KEY set)")
        return f"{message}; serve the model with tool calling and use inspect's openai-api provider"

    def _output(self, outcome: _Outcome) -> ModelOutput:
        choices = []
        for i, g in enumerate(outcome.generations):
            stop = "stop" if g.finish_reason == "stop" else ("model_length" if outcome.cut_to_context else "max_tokens")
            logprobs = None
            if outcome.token_texts is not None and g.logprobs:
                texts = outcome.token_texts[i]
                if len(texts) != len(g.logprobs):
                    texts = [""] * len(g.logprobs)
                pairs = zip(texts, g.logprobs, strict=True)
                logprobs = Logprobs(content=[Logprob(token=t, logprob=lp, bytes=list(t.encode())) for t, lp in pairs])
            message = ChatMessageAssistant(content=g.text, model=self.model_name, source="generate")
            choices.append(ChatCompletionChoice(message=message, stop_reason=stop, logprobs=logprobs))
        usage = None
        if outcome.prompt_tokens is not None and all(n is not None for n in outcome.output_tokens):
            produced = sum(n or 0 for n in outcome.output_tokens)
            usage = ModelUsage(input_tokens=outcome.prompt_tokens, output_tokens=produced,
                               total_tokens=outcome.prompt_tokens + produced)
        return ModelOutput(model=self.model_name, choices=choices, usage=usage, time=outcome.seconds)


def _estimate(text: str) -> int:
    """Token estimate without a tokenizer: one per three characters (over- rather than under-counts)."""
    return max(1, math.ceil(len(text) / 3))
