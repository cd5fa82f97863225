"""The Guarded wrapper: cache, rate limit and retries for any backend that sends requests through Backend.request."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from overseer.errors import OverseerError
from overseer.models import Backend, Chat, EndpointBackend, GenerateConfig, Generation
from overseer.models._endpoint import EndpointClient
from overseer.models._guarded import Guarded, RetryableError
from overseer.testing import OpenAICompatServer


class ScriptedRemote(Backend):
    """A backend whose every prompt is one request; each try answers from a script of failures and texts."""

    kind = "scripted"

    def __init__(self, script: list[Any]):
        self.name = "scripted"
        self.script = list(script)
        self.tries = 0

    def identity(self) -> dict[str, Any]:
        return {"backend": "scripted"}

    def _send(self) -> dict[str, Any]:
        self.tries += 1
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return {"text": step}

    def generate(self, prompts: Sequence[Chat | str], config: GenerateConfig | None = None) -> list[list[Generation]]:
        return [[Generation(self.request(f"key:{p}", self._send)["text"])] for p in prompts]


def _texts(generations: list[list[Generation]]) -> list[str]:
    return [g[0].text for g in generations]


def test_a_backend_alone_tries_each_request_once():
    remote = ScriptedRemote([RetryableError("HTTP 503: busy", answered=True), "late"])
    with pytest.raises(OverseerError, match=r"^backend 'scripted' failed: HTTP 503: busy$"):
        remote.generate(["hi"])
    assert remote.tries == 1


def test_wrapped_it_is_retried_then_cached(tmp_path: Path, capsys: pytest.CaptureFixture):
    remote = ScriptedRemote([RetryableError("HTTP 503: busy", answered=True), "hello"])
    guarded = Guarded(remote, backoff_s=0.001, cache_dir=tmp_path)
    assert _texts(guarded.generate(["hi"])) == ["hello"]
    assert remote.tries == 2 and guarded.stats == {"requests": 2, "cache_hits": 0, "retries": 1, "failed": 0}
    assert "backend 'scripted': HTTP 503: busy; retry 1/3" in capsys.readouterr().err
    again = Guarded(ScriptedRemote([]), cache_dir=tmp_path)
    assert _texts(again.generate(["hi"])) == ["hello"] and again.requests_sent == 0
    assert again.identity() == {"backend": "scripted"} and again.kind == "scripted"


def test_a_first_refused_connection_stops_every_request_without_retries(capsys: pytest.CaptureFixture):
    remote = ScriptedRemote([RetryableError("cannot connect (refused)", refused=True)])
    guarded = Guarded(remote, backoff_s=0.001, use_cache=False)
    message = r"^backend 'scripted' cannot be reached: cannot connect \(refused\); is the server running"
    with pytest.raises(OverseerError, match=message):
        guarded.generate(["a"])
    with pytest.raises(OverseerError, match=message):
        guarded.generate(["b"])
    assert remote.tries == 1 and guarded.stats["retries"] == 0 and capsys.readouterr().err == ""


def test_the_endpoint_client_alone_makes_one_try_and_the_endpoint_backend_retries():
    chat = [Chat(({"role": "user", "content": "hi"},))]
    with OpenAICompatServer(None, responder=lambda body: "ok", fail_first=1, model_name="fake") as server:
        client = EndpointClient(server.url, "fake")
        with pytest.raises(OverseerError, match=rf"^endpoint {server.url} failed: HTTP 503"):
            client.generate(chat)
        backend = EndpointBackend(server.url, "fake", use_cache=False, backoff_s=0.001, verbose=False)
        with pytest.warns(UserWarning, match="without log-probabilities"):  # a responder sends none
            assert _texts(backend.generate(chat)) == ["ok"] and backend.requests_sent == 1
        assert len(server.chat_requests) == 2  # one refused by fail_first, one answered
