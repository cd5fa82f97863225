"""The loopback server without a model: a scripted ``responder`` answers chat requests, ``delay_s`` paces them.

Clients under test are the official ``openai`` SDK and inspect_ai's ``openai-api`` provider, both pointed at
``127.0.0.1``; nothing here loads model weights.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from overseer.errors import OverseerError
from overseer.testing import OpenAICompatServer

openai = pytest.importorskip("openai")

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _weather_call(body: dict[str, Any]) -> dict[str, Any]:
    return {"content": None, "tool_calls": [{"id": "call_1", "type": "function",
                                             "function": {"name": "get_weather",
                                                          "arguments": json.dumps({"city": "Paris"})}}]}


def _client(server: OpenAICompatServer) -> Any:
    return openai.OpenAI(base_url=server.url, api_key="x", max_retries=0, timeout=10)


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_openai_client_gets_the_text_and_usage():
    with OpenAICompatServer(None, model_name="fake", responder=lambda body: "the answer is four") as server:
        reply = _client(server).chat.completions.create(
            model="fake", messages=[{"role": "system", "content": "be brief"},
                                    {"role": "user", "content": "what is two plus two"}])
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == "the answer is four"
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    assert reply.model == "fake"
    # whitespace-separated words: 2 + 5 in the prompt, 4 in the answer
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (7, 4, 11)


def test_openai_client_gets_a_tool_call_and_the_server_sees_the_tools():
    with OpenAICompatServer(None, responder=_weather_call) as server:
        reply = _client(server).chat.completions.create(
            model="fake", messages=[{"role": "user", "content": "weather in Paris?"}], tools=[WEATHER_TOOL])
        sent = server.chat_requests
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.id == "call_1" and call.type == "function"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert len(sent) == 1
    assert [t["function"]["name"] for t in sent[0]["tools"]] == ["get_weather"]
    assert sent[0]["messages"] == [{"role": "user", "content": "weather in Paris?"}]


def test_responder_tool_calls_get_defaults_for_id_type_and_dict_arguments():
    def answer(body: dict[str, Any]) -> dict[str, Any]:
        call = {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
        return {"content": "checking", "tool_calls": [call]}

    with OpenAICompatServer(None, responder=answer) as server:
        reply = _client(server).chat.completions.create(model="fake", messages=[{"role": "user", "content": "hi"}])
    call = reply.choices[0].message.tool_calls[0]
    assert call.id and call.type == "function" and json.loads(call.function.arguments) == {"city": "Oslo"}
    assert reply.choices[0].message.content == "checking"


def test_inspect_openai_api_provider_gets_the_tool_call():
    from inspect_ai.model import ChatMessageUser, get_model
    from inspect_ai.tool import ToolInfo, ToolParam, ToolParams

    tool = ToolInfo(name="get_weather", description="Current weather in a city.",
                    parameters=ToolParams(properties={"city": ToolParam(type="string", description="The city.")},
                                          required=["city"]))
    with OpenAICompatServer(None, responder=_weather_call) as server:
        model = get_model("openai-api/local/fake", base_url=server.url, api_key="x", memoize=False)
        output = asyncio.run(model.generate([ChatMessageUser(content="hi")], tools=[tool]))
        sent = server.chat_requests
    calls = output.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].function == "get_weather" and calls[0].arguments == {"city": "Paris"} and calls[0].id == "call_1"
    assert output.stop_reason == "tool_calls"
    # "hi", plus the words of the tool definitions the request carried (a server counts those too)
    assert output.usage is not None and output.usage.input_tokens == 1 + len(json.dumps(sent[0]["tools"]).split())
    assert sent[0]["model"] == "fake" and sent[0]["tools"][0]["function"]["name"] == "get_weather"


def test_delay_overlaps_concurrent_requests():
    with OpenAICompatServer(None, responder=lambda body: "ok", delay_s=0.3) as server:
        client = _client(server)
        answers: list[str] = []

        def ask() -> None:
            reply = client.chat.completions.create(model="fake", messages=[{"role": "user", "content": "hi"}])
            answers.append(reply.choices[0].message.content)

        threads = [threading.Thread(target=ask) for _ in range(4)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        elapsed = time.perf_counter() - start
    assert answers == ["ok"] * 4
    assert 0.3 <= elapsed < 0.9, elapsed


def test_a_raising_responder_is_a_server_error():
    def broken(body: dict[str, Any]) -> str:
        raise ValueError("script ran out of turns")

    with OpenAICompatServer(None, responder=broken) as server:
        with pytest.raises(openai.InternalServerError) as caught:
            _client(server).chat.completions.create(model="fake", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 500
    assert "script ran out of turns" in str(caught.value)


def test_a_malformed_responder_answer_is_a_server_error():
    with OpenAICompatServer(None, responder=lambda body: {"tool_calls": [{"function": {}}]}) as server:
        with pytest.raises(openai.APIError, match="no function name"):
            _client(server).chat.completions.create(model="fake", messages=[{"role": "user", "content": "hi"}])


def test_completions_without_a_model_is_a_bad_request():
    with OpenAICompatServer(None, responder=lambda body: "ok") as server:
        status, payload = _post(f"{server.url}/completions", {"model": "fake", "prompt": "hi"})
    assert status == 400
    assert payload == {"error": {"message": "this server has no model for /v1/completions"}}


def test_fail_first_and_refuse_apply_to_the_responder_path():
    with OpenAICompatServer(None, responder=lambda body: "ok", fail_first=1) as server:
        status, _ = _post(f"{server.url}/chat/completions", {"messages": []})
        assert status == 503
        status, payload = _post(f"{server.url}/chat/completions", {"messages": []})
        assert status == 200 and payload["choices"][0]["message"]["content"] == "ok"
        assert len(server.chat_requests) == 2
    with OpenAICompatServer(None, responder=lambda body: "ok", refuse=True) as server:
        assert _post(f"{server.url}/chat/completions", {"messages": []})[0] == 403


def test_a_server_needs_a_model_or_a_responder():
    with pytest.raises(OverseerError, match="model .* or a responder"):
        OpenAICompatServer(None)
    with pytest.raises(OverseerError, match="delay_s"):
        OpenAICompatServer(None, responder=lambda body: "ok", delay_s=-1)


# --------------------------------------------------------------------------- usage on the model-backed path


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory):
    from overseer.models import load_model
    from overseer.models._tiny import build_tiny_causal_lm

    return load_model(str(build_tiny_causal_lm(tmp_path_factory.mktemp("serve_lm"))), device="cpu")


def test_model_backed_answers_carry_tokenizer_usage(tiny_lm):
    from overseer.models import Chat, encode_prompt, format_chat

    tok = tiny_lm.tokenizer
    with OpenAICompatServer(tiny_lm, model_name="tiny") as server:
        chat = _client(server).chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "Please answer yes or no."}],
            max_tokens=5, temperature=0, n=2, seed=0, logprobs=True)
        _, scored = _post(f"{server.url}/completions",
                          {"model": "tiny", "prompt": ["The answer is", "yes"], "echo": True, "max_tokens": 0,
                           "logprobs": 0})
        _, sampled = _post(f"{server.url}/completions", {"model": "tiny", "prompt": "The answer is", "max_tokens": 3,
                                                          "logprobs": 0})
        assert server.chat_requests[0]["n"] == 2
    prompt = format_chat(tok, Chat.user("Please answer yes or no."))
    assert chat.usage.prompt_tokens == len(encode_prompt(tok, prompt))
    assert chat.usage.completion_tokens == sum(len(c.logprobs.content) for c in chat.choices)
    assert chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens
    echo_tokens = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in ("The answer is", "yes"))
    assert scored["usage"] == {"prompt_tokens": echo_tokens, "completion_tokens": 0, "total_tokens": echo_tokens}
    assert sampled["usage"]["prompt_tokens"] == len(encode_prompt(tok, "The answer is"))
    assert sampled["usage"]["completion_tokens"] == len(sampled["choices"][0]["logprobs"]["tokens"])
