"""A small OpenAI-compatible server for a loaded model, on loopback only: tests and local demos.

It answers just what :class:`~overseer.models.EndpointBackend` uses: ``POST /v1/completions`` (with
``echo`` + ``logprobs`` for scoring, or generation) and ``POST /v1/chat/completions`` (continuing a
trailing assistant message), plus ``GET /v1/models``. Generation goes through the same local
sampler as the ``hf`` backend (temperature, top_p, n, seed, stop), and token ids come back as vLLM
writes them with ``return_tokens_as_token_ids`` (``token_id:123``), so a test can check that the
served and the local paths produce the same tokens. It is single-model and not meant for
production; use vLLM or ollama for real serving.

``fail_first`` (answer that many requests with HTTP 503), ``refuse`` (answer 403) and
``no_logprobs`` (answer without logprobs) let tests exercise a misbehaving endpoint.
Other servers' ways are knobs of their own. ``echo=False`` answers a completions request with
``echo`` by HTTP 400, as ollama and OpenAI's chat models leave Overseer no prompt log-probabilities;
``top_logprobs=False`` drops the alternatives of each generated token (``top_logprobs``, which it
otherwise returns in both APIs' layouts); ``slots`` refuses ``n`` above it with HTTP 400 in
llama.cpp's words (None, the default: any ``n``); ``server_header`` and ``owned_by`` set the
``Server:`` header of every answer and ``owned_by`` in ``GET /v1/models``, as real servers name
themselves there. ``llama_cpp`` answers as llama.cpp's server does where it differs from vLLM:
log-probabilities in the chat layout (``content`` entries with the token's ``id``) on both APIs,
``echo`` accepted and ignored (only the generated text comes back), a prefilled assistant turn
repeated at the start of the chat answer, the i-th of ``n`` samples seeded ``seed + i``, and, unless
given otherwise, ``slots=1``, ``server_header="llama.cpp"`` and ``owned_by="llamacpp"``.
``drop_tools`` plays a server whose chat template has no tool support: the ``tools`` a request
offers are not shown to the responder and not counted in ``usage``, and ``tool_choice`` is ignored.

Two more knobs serve tests that need no model at all. ``responder`` (a function of the request
body, returning the assistant's text or a message with ``tool_calls``) answers
``/v1/chat/completions`` in its place, so tool-calling clients (the ``openai`` SDK, inspect_ai's
``openai-api`` provider) can be driven through a scripted conversation; its requests are answered
concurrently and its ``usage`` counts whitespace-separated words (of the messages and of the tool
definitions), an approximation of tokens.
``delay_s`` makes every POST wait before answering, outside any lock, so a test can measure how
far a client overlaps its requests. Every chat request body is kept in ``chat_requests``, to see
what a client sent (its messages, the ``tools`` it offered).
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from overseer.errors import OverseerError
from overseer.models import Chat, GenerateConfig, Generation, encode_prompt, format_chat

if TYPE_CHECKING:
    from overseer.models import LoadedModel

MAX_BODY_BYTES = 1 << 20

Responder = Callable[[dict[str, Any]], str | dict[str, Any]]
"""Answers a chat request body with the assistant's text or message (``content``, ``tool_calls``)."""


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def _text_of(content: Any) -> str:
    """The text in a message's ``content``: a string, or the ``text`` of its parts (images etc. skipped)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text") or "") for part in content if isinstance(part, dict))
    return ""


def _words(text: str) -> int:
    return len(text.split())


def _tool_call(call: Any, index: int) -> dict[str, Any]:
    """One responder tool call in the API's layout; ``id`` and ``type`` default, dict arguments become JSON."""
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise OverseerError(f"responder tool call {index} is not {{'function': {{'name': ..., 'arguments': ...}}}}")
    function = call["function"]
    if not isinstance(function.get("name"), str) or not function["name"]:
        raise OverseerError(f"responder tool call {index} has no function name")
    arguments = function.get("arguments")
    if arguments is None:
        arguments = "{}"
    elif not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {"id": str(call.get("id") or f"call_{index}"), "type": call.get("type") or "function",
            "function": {"name": function["name"], "arguments": arguments}}


def _responder_message(answer: Any) -> dict[str, Any]:
    """The assistant message for a responder's answer (text, or a dict with ``content``/``tool_calls``)."""
    if isinstance(answer, str):
        return {"role": "assistant", "content": answer}
    if not isinstance(answer, dict):
        raise OverseerError(f"a responder returns str or dict, not {type(answer).__name__}")
    content = answer.get("content")
    if content is not None and not isinstance(content, str):
        raise OverseerError(f"responder content must be a string or None, not {type(content).__name__}")
    message: dict[str, Any] = {"role": "assistant", "content": content}
    calls = answer.get("tool_calls") or []
    if calls:
        message["tool_calls"] = [_tool_call(call, i) for i, call in enumerate(calls)]
    return message


def _echo_logprobs(lm: LoadedModel, text: str) -> dict[str, Any]:
    """Per-token log-probs of ``text`` in the completions API's ``logprobs`` layout."""
    import torch

    enc = lm.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([ids], device=lm.device)).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
    values: list[float | None] = [None]
    values += [float(logp[i - 1, ids[i]]) for i in range(1, len(ids))]
    return {
        "tokens": [text[a:b] for a, b in offsets],
        "token_logprobs": values,
        "text_offset": [int(a) for a, _ in offsets],
        "top_logprobs": None,
    }


def _alternatives(lm: LoadedModel, text: str, gen: Generation, k: int) -> list[dict[str, float]]:
    """The ``k`` most likely tokens (text -> log-prob) at each generated position of ``gen`` after ``text``."""
    import math

    import torch

    prompt = encode_prompt(lm.tokenizer, text)
    ids = prompt + list(gen.token_ids)
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([ids], device=lm.device)).logits[0].float()
    logp = torch.log_softmax(logits[len(prompt) - 1 : len(ids) - 1], dim=-1)
    values, indices = logp.topk(min(k, logp.shape[-1]), dim=-1)
    out = []
    for row_values, row_indices in zip(values.tolist(), indices.tolist(), strict=True):
        top: dict[str, float] = {}
        for value, index in zip(row_values, row_indices, strict=True):
            text = lm.tokenizer.decode([index])  # two ids with one text: one entry, probabilities summed
            top[text] = value if text not in top else math.log(math.exp(top[text]) + math.exp(value))
        out.append(top)
    return out


def _sample(lm: LoadedModel, text: str, body: dict[str, Any], seed_per_sample: bool = False) -> list[Generation]:
    """Complete ``text`` with the request's sampling settings (OpenAI names) through the local sampler.

    ``seed_per_sample``: the i-th sample is drawn alone with seed ``seed + i``, as llama.cpp does.
    """
    from overseer.models import generate

    stop = body.get("stop") or ()
    config = GenerateConfig(
        max_new_tokens=int(body.get("max_tokens") or 16),
        temperature=float(body.get("temperature") if body.get("temperature") is not None else 1.0),
        top_p=float(body.get("top_p") if body.get("top_p") is not None else 1.0),
        n=int(body.get("n") or 1),
        seed=body.get("seed"),
        stop=(stop,) if isinstance(stop, str) else tuple(stop),
    )
    if not seed_per_sample or config.n == 1:
        return generate(lm, [text], config, batch_size=1)[0]
    seeds = [None if config.seed is None else config.seed + i for i in range(config.n)]
    return [generate(lm, [text], replace(config, n=1, seed=s), batch_size=1)[0][0] for s in seeds]


def _content_logprobs(lm: LoadedModel, gen: Generation, names: list[str],
                      alternatives: list[dict[str, float]], with_ids: bool) -> dict[str, Any]:
    """The chat layout: ``content`` entries with their ``top_logprobs``, and the token ``id`` as llama.cpp adds."""
    entries = []
    for i, name, value, top in zip(gen.token_ids, names, gen.logprobs, alternatives, strict=True):
        entry = {"token": name, "logprob": value, "bytes": None,
                 "top_logprobs": [{"token": a, "logprob": lp, "bytes": None} for a, lp in top.items()]}
        entries.append({"id": i, **entry} if with_ids else entry)
    return {"content": entries}


def _token_names(lm: LoadedModel, ids: tuple[int, ...], as_ids: bool) -> list[str]:
    return [f"token_id:{i}" if as_ids else lm.tokenizer.decode([i]) for i in ids]


class OpenAICompatServer:
    """Serve ``lm`` on ``host:port`` (port 0 picks a free one) in a background thread.

    With a ``responder``, chat requests are answered by it instead of the model, and ``lm`` may be
    ``None`` (then ``/v1/completions`` answers 400). A responder that raises answers HTTP 500.

    >>> with OpenAICompatServer(lm) as server:      # doctest: +SKIP
    ...     EndpointBackend(server.url, "tiny").score_options(...)
    """

    def __init__(
        self,
        lm: LoadedModel | None,
        host: str = "127.0.0.1",
        port: int = 0,
        model_name: str = "overseer-local",
        fail_first: int = 0,
        refuse: bool = False,
        no_logprobs: bool = False,
        responder: Responder | None = None,
        delay_s: float = 0.0,
        llama_cpp: bool = False,
        slots: int | None = None,
        drop_tools: bool = False,
        echo: bool = True,
        top_logprobs: bool = True,
        server_header: str | None = None,
        owned_by: str | None = None,
    ):
        if not ipaddress.ip_address(host).is_loopback:
            raise OverseerError(f"the test server binds to loopback only, not {host!r}")
        if lm is None and responder is None:
            raise OverseerError("the test server needs a model (lm) or a responder")
        if delay_s < 0:
            raise OverseerError(f"delay_s must be >= 0, not {delay_s}")
        self.lm = lm
        self.responder = responder
        self.delay_s = float(delay_s)
        self.chat_requests: list[dict[str, Any]] = []
        self.model_name = model_name
        self.fail_first = fail_first
        self.refuse = refuse
        self.no_logprobs = no_logprobs
        self.llama_cpp = llama_cpp
        self.slots = slots if slots is not None or not llama_cpp else 1
        if self.slots is not None and self.slots < 1:
            raise OverseerError(f"slots must be at least 1 (or None: any n), not {slots}")
        self.drop_tools = drop_tools
        self.echo = echo
        self.top_logprobs = top_logprobs
        self.server_header = server_header if server_header is not None or not llama_cpp else "llama.cpp"
        self.owned_by = owned_by if owned_by is not None or not llama_cpp else "llamacpp"
        self.requests = 0
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()  # one forward pass at a time
        self._httpd = ThreadingHTTPServer((host, port), self._handler())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL of the API (``http://127.0.0.1:<port>/v1``)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> OpenAICompatServer:
        """Start serving in a daemon thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> OpenAICompatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ request handling

    def _completions(self, body: dict[str, Any]) -> dict[str, Any]:
        assert self.lm is not None
        prompts = body.get("prompt", "")
        prompts = prompts if isinstance(prompts, list) else [prompts]
        as_ids = bool(body.get("return_tokens_as_token_ids"))
        choices = []
        prompt_tokens = completion_tokens = 0
        top_k = int(body.get("logprobs") or 0) if self.top_logprobs else 0
        for prompt in prompts:
            if body.get("echo") and not self.llama_cpp:  # llama.cpp accepts echo and ignores it
                with self._model_lock:
                    logprobs = None
                    if body.get("logprobs") is not None and not self.no_logprobs:
                        logprobs = _echo_logprobs(self.lm, prompt)
                    prompt_tokens += len(self.lm.tokenizer(prompt, add_special_tokens=False)["input_ids"])
                choices.append({"index": len(choices), "text": prompt, "logprobs": logprobs, "finish_reason": "length"})
                continue
            with self._model_lock:
                samples = _sample(self.lm, prompt, body, self.llama_cpp)
                prompt_tokens += len(encode_prompt(self.lm.tokenizer, prompt))
            completion_tokens += sum(len(gen.token_ids) for gen in samples)
            for gen in samples:
                logprobs = None
                if body.get("logprobs") is not None and not self.no_logprobs:
                    alternatives: list[dict[str, float]] = [{} for _ in gen.token_ids]
                    if top_k > 0 and gen.token_ids:
                        with self._model_lock:
                            alternatives = _alternatives(self.lm, prompt, gen, top_k)
                    if self.llama_cpp:  # llama.cpp answers completions in the chat layout too
                        names = _token_names(self.lm, gen.token_ids, False)
                        choices.append({"index": len(choices), "text": gen.text, "finish_reason": gen.finish_reason,
                                        "logprobs": _content_logprobs(self.lm, gen, names, alternatives, True)})
                        continue
                    top = alternatives if top_k > 0 and gen.token_ids else None
                    logprobs = {"tokens": _token_names(self.lm, gen.token_ids, as_ids),
                                "token_logprobs": list(gen.logprobs), "text_offset": None, "top_logprobs": top}
                choices.append({"index": len(choices), "text": gen.text, "logprobs": logprobs,
                                "finish_reason": gen.finish_reason})
        return {"id": "cmpl-local", "object": "text_completion", "created": 0, "model": self.model_name,
                "choices": choices, "usage": _usage(prompt_tokens, completion_tokens)}

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        assert self.lm is not None
        messages = list(body.get("messages") or [])
        prefix = ""
        if messages and messages[-1].get("role") == "assistant" and body.get("continue_final_message", True):
            prefix = messages.pop()["content"]
        as_ids = bool(body.get("return_tokens_as_token_ids"))
        with self._model_lock:
            prompt = format_chat(self.lm.tokenizer, Chat.of(messages, prefix))
            samples = _sample(self.lm, prompt, body, self.llama_cpp)
            prompt_tokens = len(encode_prompt(self.lm.tokenizer, prompt))
        choices = []
        for gen in samples:
            logprobs = None
            if body.get("logprobs") and not self.no_logprobs:
                names = _token_names(self.lm, gen.token_ids, as_ids and not self.llama_cpp)
                k = int(body.get("top_logprobs") or 0) if self.top_logprobs else 0
                alternatives: list[dict[str, float]] = [{} for _ in names]
                if k > 0 and gen.token_ids:
                    with self._model_lock:
                        alternatives = _alternatives(self.lm, prompt, gen, k)
                logprobs = _content_logprobs(self.lm, gen, names, alternatives, self.llama_cpp)
            text = prefix + gen.text if self.llama_cpp else gen.text  # llama.cpp repeats the prefill
            choices.append({"index": len(choices), "message": {"role": "assistant", "content": text},
                            "logprobs": logprobs, "finish_reason": gen.finish_reason})
        completion_tokens = sum(len(gen.token_ids) for gen in samples)
        return {"id": "chatcmpl-local", "object": "chat.completion", "created": 0, "model": self.model_name,
                "choices": choices, "usage": _usage(prompt_tokens, completion_tokens)}

    def _respond(self, body: dict[str, Any]) -> dict[str, Any]:
        """Answer a chat request with the responder; no model lock, so requests run concurrently.

        ``usage`` counts whitespace-separated words (of the messages' text, and of the answer's text
        and tool calls), an approximation of tokens good enough for tests.
        """
        assert self.responder is not None
        if self.drop_tools:
            body = {k: v for k, v in body.items() if k not in ("tools", "tool_choice")}
        message = _responder_message(self.responder(body))
        calls = message.get("tool_calls") or []
        prompt_tokens = sum(_words(_text_of(m.get("content"))) for m in body.get("messages") or []
                            if isinstance(m, dict))
        prompt_tokens += _words(json.dumps(body["tools"])) if body.get("tools") else 0
        completion_tokens = _words(message["content"] or "")
        completion_tokens += sum(_words(c["function"]["name"]) + _words(c["function"]["arguments"]) for c in calls)
        return {"id": f"chatcmpl-local-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
                "created": int(time.time()), "model": self.model_name,
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": "tool_calls" if calls else "stop"}],
                "usage": _usage(prompt_tokens, completion_tokens)}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet in tests
                return

            def version_string(self) -> str:
                return server.server_header or super().version_string()

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.rstrip("/") == "/v1/models":
                    entry = {"id": server.model_name, "object": "model"}
                    if server.owned_by:
                        entry["owned_by"] = server.owned_by
                    self._send(200, {"object": "list", "data": [entry]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                with server._lock:
                    server.requests += 1
                    failing = server.requests <= server.fail_first
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self._send(413, {"error": {"message": "request body too large"}})
                    return
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(400, {"error": {"message": "body is not JSON"}})
                    return
                route = self.path.rstrip("/")
                if route == "/v1/chat/completions":
                    with server._lock:
                        server.chat_requests.append(body)
                if server.delay_s > 0:
                    time.sleep(server.delay_s)
                if server.refuse:
                    self._send(403, {"error": {"message": "this key may not use the model"}})
                    return
                if failing:
                    self._send(503, {"error": {"message": "warming up, retry later"}})
                    return
                if server.slots is not None and int(body.get("n") or 1) > server.slots:
                    self._send(400, {"error": {"message": f"Field 'n': Value must be between 1 <= value <= "
                                                          f"{server.slots}, but got {body.get('n')}"}})
                elif route == "/v1/completions":
                    if body.get("echo") and not server.echo:
                        self._send(400, {"error": {"message": "'echo' is not supported by this server"}})
                    elif server.lm is None:
                        self._send(400, {"error": {"message": "this server has no model for /v1/completions"}})
                    else:
                        self._send(200, server._completions(body))
                elif route == "/v1/chat/completions" and server.responder is not None:
                    try:
                        answer = server._respond(body)
                    except Exception as exc:  # a failing responder is a server error, reported to the client
                        self._send(500, {"error": {"message": str(exc)}})
                    else:
                        self._send(200, answer)
                elif route == "/v1/chat/completions":
                    self._send(200, server._chat(body))
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

        return Handler
