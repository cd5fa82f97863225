"""Which provider plays a role, and that an API key never travels over plain http to another host."""

from __future__ import annotations

import pytest

from overseer.audit.roles import check_model, classify, native_tools
from overseer.errors import OverseerError


@pytest.mark.parametrize(("model", "expected"), [
    ("smollm2-135m", ("overseer", "smollm2-135m")),
    ("overseer/smollm2-135m", ("overseer", "smollm2-135m")),
    ("hf/gpt2", ("overseer", "hf/gpt2")),
    ("Qwen/Qwen2.5-7B-Instruct", ("overseer", "Qwen/Qwen2.5-7B-Instruct")),
    ("openai/qwen@http://127.0.0.1:8000/v1", ("served", "qwen@http://127.0.0.1:8000/v1")),
    ("anthropic/claude-x", ("inspect", "anthropic/claude-x")),
    ("mockllm/model", ("inspect", "mockllm/model")),
])
def test_model_strings_are_classified_one_way(model: str, expected: tuple[str, str]) -> None:
    assert classify(model) == expected
    assert native_tools(model) == (expected[0] != "overseer")


def test_an_api_key_is_refused_over_plain_http_to_another_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERSEER_API_KEY", "secret")
    check_model("openai/x@http://127.0.0.1:8000/v1", "auditor")
    check_model("openai/x@https://api.example.com/v1", "auditor")
    with pytest.raises(OverseerError, match="plain http to another host"):
        check_model("openai/x@http://api.example.com/v1", "auditor")
    with pytest.raises(OverseerError, match="allowed for a server URL: openai/MODEL@URL"):
        classify("vllm/x@http://127.0.0.1:8000/v1")
