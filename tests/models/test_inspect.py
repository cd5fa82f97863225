"""The ``overseer`` inspect_ai model provider: conversion, settings, offline token counts, full evals."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("inspect_ai")

from inspect_ai.log import read_eval_log  # noqa: E402
from inspect_ai.model import (  # noqa: E402
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageTool,
    ChatMessageUser,
    GenerateConfig,
    get_model,
    get_model_info,
)
from inspect_ai.model._model_info import get_model_input_tokens  # noqa: E402
from inspect_ai.tool import ToolCall, ToolInfo  # noqa: E402

from overseer.errors import OverseerError  # noqa: E402
from overseer.models import Chat, format_chat, load_model  # noqa: E402
from overseer.models import GenerateConfig as OverseerConfig  # noqa: E402
from overseer.models._inspect import to_chat, to_overseer_config  # noqa: E402
from overseer.models._tiny import build_tiny_causal_lm  # noqa: E402
from overseer.testing import OpenAICompatServer  # noqa: E402

TASK_FILE = Path(__file__).parent / "tasks" / "echo_task.py"


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ChatML model (context 1,024) saved to disk."""
    return build_tiny_causal_lm(tmp_path_factory.mktemp("inspect_lm"))


@pytest.fixture()
def no_tiktoken(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any use of inspect's tiktoken estimate (a vocabulary download) fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("inspect's tiktoken token counter was used")

    import inspect_ai.model._model as model_module
    import tiktoken

    monkeypatch.setattr(model_module, "count_text_tokens", refuse)
    monkeypatch.setattr(tiktoken, "get_encoding", refuse)


CONVERSATION = [
    ChatMessageSystem(content="Be brief."),
    ChatMessageUser(content="What is 2+2?"),
    ChatMessageAssistant(
        content="Let me check.", tool_calls=[ToolCall(id="c1", function="add", arguments={"a": 2, "b": 2})]
    ),
    ChatMessageTool(content="4", tool_call_id="c1", function="add"),
    ChatMessageUser(content="So?"),
]


# --------------------------------------------------------------------------- mock backend, in process


def test_registered_provider_replays_the_mock_script():
    model = get_model("overseer/mock", outputs=["Paris", "Lyon"], memoize=False)
    assert type(model.api).__name__ == "OverseerModelAPI" and str(model) == "overseer/mock"
    first = run(model.generate("Capital of France?"))
    second = run(model.generate("Second city?"))
    assert (first.completion, second.completion) == ("Paris", "Lyon")
    assert first.stop_reason == "stop" and first.usage.input_tokens > 0


def test_conversation_with_every_role_is_rendered_in_order():
    model = get_model("overseer/mock", outputs=["4.", "yes"], memoize=False)
    run(model.generate(CONVERSATION))
    prompt = model.api.backend.calls[0][0]
    assert prompt == (
        "System: Be brief.\n\nHuman: What is 2+2?\n\n"
        'Assistant: Let me check.\n[tool call c1: add({"a": 2, "b": 2})]\n\n'
        "Tool: 4\n\nHuman: So?\n\nAssistant:"
    )
    # a final assistant message is the prefilled start of the answer
    run(model.generate([ChatMessageUser(content="Is it?"), ChatMessageAssistant(content="The answer is")]))
    assert model.api.backend.calls[1][0] == "Human: Is it?\n\nAssistant: The answer is"


def test_to_chat_keeps_roles_and_tool_fields():
    chat = to_chat(CONVERSATION)
    assert [m["role"] for m in chat.messages] == ["system", "user", "assistant", "tool", "user"]
    assert chat.messages[3] == {"role": "tool", "content": "4", "tool_call_id": "c1", "name": "add"}
    assert chat.assistant_prefix == ""
    with pytest.raises(OverseerError, match="text only"):
        from inspect_ai.model import ContentImage

        to_chat([ChatMessageUser(content=[ContentImage(image="data:image/png;base64,AAAA")])])


def test_generate_settings_map_to_overseer_config():
    model = get_model("overseer/mock", outputs=["a b c"] * 4, memoize=False)
    config = GenerateConfig(max_tokens=5, temperature=0.7, top_p=0.9, seed=11, num_choices=3, stop_seqs=["\n"])
    out = run(model.generate("Go", config=config))
    assert len(out.choices) == 3
    assert model.api.backend.calls[0][1] == OverseerConfig(
        max_new_tokens=5, temperature=0.7, top_p=0.9, n=3, seed=11, stop=("\n",)
    )
    # unset values take Overseer's meaning: greedy, one choice, no seed; the output limit is declared
    assert to_overseer_config(GenerateConfig(), 77) == OverseerConfig(max_new_tokens=77, seed=None)
    # the declared limit (the mock's 2,048-token context), cut so the 3-word prompt still fits
    out = run(model.generate("Go"))
    assert model.api.max_tokens() == 2048 and out.usage.input_tokens == 3
    assert model.api.backend.calls[-1][1].max_new_tokens == 2048 - 3


def test_failed_generation_and_tools_are_errors():
    model = get_model("overseer/mock", outputs=[RuntimeError("server fell over")], memoize=False)
    with pytest.raises(Exception, match="server fell over"):
        run(model.generate("Hi"))
    tool = ToolInfo(name="add", description="Add two numbers.")
    with pytest.raises(OverseerError, match="does not call tools, and the task offers add"):
        run(get_model("overseer/mock", memoize=False).generate("Hi", tools=[tool]))


def test_tools_on_a_served_model_name_inspects_own_provider_in_one_line():
    """No request is sent: the error names ``openai-api`` with the same server, and is not a request dump."""
    tool = ToolInfo(name="add", description="Add two numbers.")
    model = get_model("overseer/openai/x@http://127.0.0.1:9/v1", memoize=False)
    with pytest.raises(OverseerError) as caught:
        run(model.generate("Hi", tools=[tool]))
    message = str(caught.value)
    assert "\n" not in message and "Request:" not in message
    assert "--model openai-api/local/x --model-base-url http://127.0.0.1:9/v1" in message


def test_model_args_are_backend_options():
    with pytest.raises(OverseerError, match="has no option 'colour'"):
        get_model("overseer/mock", colour="red", memoize=False)
    with pytest.raises(OverseerError, match="api_key_env"):
        get_model("overseer/mock", api_key="sk-secret", memoize=False)
    with pytest.raises(OverseerError, match="base URL"):
        get_model("overseer/mock", base_url="http://127.0.0.1:1/v1", memoize=False)
    model = get_model("overseer/mock", context_length=300, memoize=False)
    assert get_model_input_tokens(model) == 300 and model.api.max_tokens() == 300


def test_concurrent_requests_share_backend_calls():
    model = get_model("overseer/mock", outputs=["ok"] * 6, memoize=False)  # get_model keeps `default` for itself
    sizes: list[int] = []
    backend_generate = model.api.backend.generate

    def spy(prompts, config=None):
        sizes.append(len(prompts))
        return backend_generate(prompts, config)

    model.api.backend.generate = spy

    async def many():
        return await asyncio.gather(*(model.generate(f"question {i}") for i in range(6)))

    outputs = run(many())
    assert [o.completion for o in outputs] == ["ok"] * 6
    assert sum(sizes) == 6 and len(sizes) <= 6
    prompts = sorted(c[0] for c in model.api.backend.calls)
    assert prompts == sorted(f"Human: question {i}\n\nAssistant:" for i in range(6))


def test_overseer_imports_without_inspect_ai():
    code = (
        "import sys; sys.modules['inspect_ai'] = None\n"
        "import overseer, overseer.models, overseer._inspect_ai\n"
        "assert not hasattr(overseer._inspect_ai, 'overseer_provider')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


# --------------------------------------------------------------------------- a tiny local model, in process


def test_tokens_are_counted_by_the_models_own_tokenizer(tiny_dir: Path, no_tiktoken):
    model = get_model(f"overseer/{tiny_dir}", device="cpu", memoize=False)
    tok = model.api.backend.loaded.tokenizer
    text = "The answer is (a) The grandfather"
    assert run(model.count_tokens(text)) == len(tok(text, add_special_tokens=False)["input_ids"])
    assert run(model.api.tokenize(text)) == tok(text, add_special_tokens=False)["input_ids"]
    messages = [ChatMessageUser(content="Is it?")]
    rendered = format_chat(tok, Chat.user("Is it?"))
    assert run(model.count_tokens(messages)) == len(tok(rendered)["input_ids"])

    out = run(model.generate(messages, config=GenerateConfig(max_tokens=4, logprobs=True)))
    assert out.usage.input_tokens == len(tok(rendered)["input_ids"])
    expected = model.api.backend.generate([Chat.user("Is it?")], OverseerConfig(max_new_tokens=4))[0][0]
    assert out.completion == expected.text
    assert out.usage.output_tokens == len(expected.token_ids) == len(out.choices[0].logprobs.content)
    assert [lp.logprob for lp in out.choices[0].logprobs.content] == pytest.approx(expected.logprobs, abs=1e-5)


def test_context_window_comes_from_the_model_config(tiny_dir: Path):
    model = get_model(f"overseer/{tiny_dir}", device="cpu", memoize=False)
    assert get_model_input_tokens(model) == 1024
    assert get_model_info(model).context_length == 1024 and model.api.max_tokens() == 1024
    # the backend loads once per process, whichever Model names it
    assert get_model(f"overseer/{tiny_dir}", device="cpu", memoize=False).api.backend is model.api.backend


def test_completions_are_cut_to_the_context_window(tiny_causal: Path):
    """The conftest model has 128 positions: a long request is cut to fit, a too-long prompt answers empty."""
    model = get_model(f"overseer/{tiny_causal}", device="cpu", memoize=False)
    out = run(model.generate("the city of paris is in france", config=GenerateConfig(max_tokens=500)))
    prompt_tokens = out.usage.input_tokens
    assert prompt_tokens + out.usage.output_tokens <= 128
    assert out.stop_reason in ("stop", "model_length")
    long = run(model.generate("the city " * 100, config=GenerateConfig(max_tokens=4)))
    assert long.stop_reason == "model_length" and long.completion == ""


# --------------------------------------------------------------------------- a served model on loopback


def test_loopback_server_through_the_openai_spec(tiny_dir: Path):
    lm = load_model(str(tiny_dir), device="cpu")
    with OpenAICompatServer(lm) as server:
        spec = f"overseer/openai/overseer-local@{server.url}"
        model = get_model(spec, use_cache=False, verbose=False, tokenizer=str(tiny_dir), memoize=False)
        out = run(model.generate([ChatMessageUser(content="Is it?")], config=GenerateConfig(max_tokens=4)))
    local = model.api.backend.tokenizer
    expected = get_model(f"overseer/{tiny_dir}", device="cpu").api.backend.generate(
        [Chat.user("Is it?")], OverseerConfig(max_new_tokens=4)
    )[0][0]
    assert out.completion == expected.text
    assert out.usage.input_tokens == len(local(format_chat(local, Chat.user("Is it?")))["input_ids"])


# --------------------------------------------------------------------------- whole evals, offline, in a subprocess


_EVAL_SCRIPT = """
import importlib.util, sys
from inspect_ai import eval
spec = importlib.util.spec_from_file_location("echo_task", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
task_file, model, log_dir, max_tokens, limit = sys.argv[1:6]
logs = eval(module.echo_task(max_tokens=int(max_tokens)), model=model, log_dir=log_dir, limit=int(limit),
            display="none", model_args={"device": "cpu"})
assert logs[0].status == "success", logs[0].error
"""


def _no_network() -> list[str]:
    """``unshare -n`` (new, empty network namespace) where this machine allows it, else nothing."""
    if shutil.which("unshare") is None:
        return []
    for cmd in (["unshare", "-rn"], ["unshare", "-n"]):
        if subprocess.run([*cmd, "true"], capture_output=True).returncode == 0:
            return cmd
    return []


def _offline_env(tiktoken_dir: Path) -> dict[str, str]:
    """Hub and transformers offline, every proxy a dead port, and an empty tiktoken cache to watch."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "inspect_eval_model")}
    dead = "http://127.0.0.1:9"
    env.update({
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
        "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "ALL_PROXY": dead, "http_proxy": dead, "https_proxy": dead,
        "all_proxy": dead, "TIKTOKEN_CACHE_DIR": str(tiktoken_dir), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    })
    return env


def _offline_run(cmd: list[str], tmp_path: Path, cwd: Path) -> Path:
    """Run ``cmd`` with networking disabled; return the one ``.eval`` log it wrote, after checking it is offline."""
    tiktoken_dir = tmp_path / "tiktoken"
    tiktoken_dir.mkdir()
    done = subprocess.run([*_no_network(), *cmd], cwd=cwd, env=_offline_env(tiktoken_dir),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert list(tiktoken_dir.iterdir()) == [], "a tiktoken vocabulary was downloaded"
    logs = list((tmp_path / "logs").glob("*.eval"))
    assert len(logs) == 1, list((tmp_path / "logs").iterdir())
    return logs[0]


def _check_log(path: Path, model: str, samples: int, max_tokens: int) -> None:
    log = read_eval_log(str(path))
    assert log.status == "success" and log.eval.model == model
    assert len(log.samples) == samples
    for sample in log.samples:
        usage = sample.output.usage
        assert usage.input_tokens > 0 and 0 <= usage.output_tokens <= max_tokens
        assert sample.scores and sample.output.stop_reason in ("stop", "max_tokens")
    assert log.stats.model_usage[model].input_tokens > 0


def test_inspect_eval_of_a_task_on_a_local_model_offline(tiny_dir: Path, tmp_path: Path):
    model = f"overseer/{tiny_dir}"
    cmd = [sys.executable, "-c", _EVAL_SCRIPT, str(TASK_FILE), model, str(tmp_path / "logs"), "6", "3"]
    _check_log(_offline_run(cmd, tmp_path, tmp_path), model, samples=3, max_tokens=6)


def test_inspect_eval_cli_offline(tiny_dir: Path, tmp_path: Path):
    shutil.copy(TASK_FILE, tmp_path / "echo_task.py")  # inspect wants a task path relative to its cwd
    model = f"overseer/{tiny_dir}"
    cmd = [sys.executable, "-m", "inspect_ai", "eval", "echo_task.py", "--model", model, "-M", "device=cpu",
           "-T", "max_tokens=5", "--log-dir", str(tmp_path / "logs"), "--display", "none"]
    log = _offline_run(cmd, tmp_path, tmp_path)
    _check_log(log, model, samples=3, max_tokens=5)
    spec = read_eval_log(str(log), header_only=True).eval
    assert spec.model_args == {"device": "cpu"} and json.loads(json.dumps(spec.task_args)) == {"max_tokens": 5}


@pytest.mark.slow
def test_inspect_eval_on_packaged_smollm2_offline(tmp_path: Path):
    model = "overseer/smollm2-135m"
    cmd = [sys.executable, "-c", _EVAL_SCRIPT, str(TASK_FILE), model, str(tmp_path / "logs"), "8", "2"]
    _check_log(_offline_run(cmd, tmp_path, tmp_path), model, samples=2, max_tokens=8)
