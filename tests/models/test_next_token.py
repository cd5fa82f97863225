"""Scoring without prompt echo in the model layer: next-token top-k, tokens after a prompt, what a server supports."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import pytest

from overseer.errors import OverseerError
from overseer.models import Chat, EndpointBackend, HFBackend, ScoringSupport, load_model, parse_top_logprobs
from overseer.models._backend import GaveUp
from overseer.models._next_token import tokens_after
from overseer.models._tiny import build_tiny_causal_lm
from overseer.testing import OpenAICompatServer

CHAT = Chat.user("Who was late? (a) the nurse (b) the doctor (c) unknown", assistant_prefix="The answer is (")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("next_token_lm"))


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path):
    return load_model(str(tiny_dir), device="cpu")


def _endpoint(url: str, **kw) -> EndpointBackend:
    return EndpointBackend(url, "tiny", use_cache=False, backoff_s=0.01, **kw)


def test_parse_top_logprobs_reads_both_layouts():
    completions = {"logprobs": {"tokens": ["a"], "top_logprobs": [{"a": -0.1, " b": -2.5}, {"x": -1.0}]}}
    assert parse_top_logprobs(completions) == {"a": -0.1, " b": -2.5}
    chat = {"logprobs": {"content": [{"token": "a", "logprob": -0.1, "top_logprobs": [
        {"token": "a", "logprob": -0.1}, {"token": "b", "logprob": -3.0}, {"token": "b", "logprob": -3.0}]}]}}
    # two ids that decode to the same text are one entry, their probabilities summed
    assert parse_top_logprobs(chat) == pytest.approx({"a": -0.1, "b": -3.0 + math.log(2)})
    assert parse_top_logprobs({"logprobs": None}) == {} and parse_top_logprobs({}) == {}
    assert parse_top_logprobs({"logprobs": {"content": [{"token": "a", "logprob": -0.1, "top_logprobs": []}]}}) == {}


def test_local_next_token_logprobs_are_the_models_top_k(tiny):
    import torch

    from overseer.models import encode_prompt, format_chat

    backend = HFBackend(tiny)
    top = backend.next_token_logprobs([CHAT], top_k=5)[0]
    assert top.ok and len(top.logprobs) <= 5
    ids = encode_prompt(tiny.tokenizer, format_chat(tiny.tokenizer, CHAT))
    with torch.inference_mode():
        logp = torch.log_softmax(tiny.model(input_ids=torch.tensor([ids])).logits[0, -1].float(), dim=-1)
    values, indices = logp.topk(5)
    expected: dict[str, float] = {}
    for v, i in zip(values.tolist(), indices.tolist(), strict=True):
        text = tiny.tokenizer.decode([i])
        expected[text] = math.log(math.exp(expected[text]) + math.exp(v)) if text in expected else v
    assert top.logprobs == pytest.approx(expected, abs=1e-5)
    assert top.mass == pytest.approx(sum(math.exp(v) for v in expected.values()))
    # batching with a second, longer prompt changes nothing
    longer = Chat.user("A much longer question that pads the other prompt on the left side.", assistant_prefix="So")
    again = backend.next_token_logprobs([longer, CHAT], top_k=5)[1]
    assert again.logprobs == pytest.approx(top.logprobs, abs=1e-4)


def test_tokens_after_counts_tokens_and_boundary_merges(tiny):
    tok = tiny.tokenizer
    assert tokens_after(tok, "The answer is (", "a") == 1
    assert tokens_after(tok, "The answer is (", "zqx") > 1
    # "Th" + "e" merges into "The": the option has no token of its own
    assert tokens_after(tok, "Th", "e") >= 2
    backend = HFBackend(tiny)
    assert backend.tokens_after(CHAT, "a") == 1
    assert _endpoint("http://127.0.0.1:9/v1").tokens_after(CHAT, "a") is None  # no tokenizer: unknown


def test_local_backend_supports_every_mode(tiny):
    assert HFBackend(tiny).scoring_modes().modes == ("full", "first_token", "sampled")


@pytest.mark.parametrize(
    ("knobs", "modes", "server"),
    [
        ({"owned_by": "vllm"}, ("full", "first_token", "sampled"), "vLLM"),
        ({"echo": False, "server_header": "llama.cpp"}, ("first_token", "sampled"), "llama.cpp"),
        ({"echo": False, "top_logprobs": False, "owned_by": "library"}, ("sampled",), "ollama"),
        ({"echo": False, "top_logprobs": False}, ("sampled",), None),
        ({"llama_cpp": True}, ("first_token", "sampled"), "llama.cpp"),  # echo ignored, owned_by llamacpp
    ],
)
def test_endpoint_scoring_modes_and_server_name(tiny, knobs, modes, server):
    with OpenAICompatServer(tiny, model_name="tiny", **knobs) as srv:
        support = _endpoint(srv.url).scoring_modes()
    assert support.modes == modes and support.server == server
    assert set(support.missing) == {"full", "first_token", "sampled"} - set(modes)
    if "full" not in modes:
        assert "echo" in support.missing["full"]
        assert ("HTTP 400" in support.missing["full"]) == (knobs.get("echo") is False)
        line = support.refusal("full")
        assert "\n" not in line and f"it supports: {', '.join(modes)}" in line
        assert (f"({server})" in line) == (server is not None)


def test_served_first_token_equals_local(tiny, tiny_dir: Path):
    local = HFBackend(tiny).next_token_logprobs([CHAT], top_k=8)[0].logprobs
    with OpenAICompatServer(tiny, model_name="tiny", echo=False) as srv:
        chat_api = _endpoint(srv.url).next_token_logprobs([CHAT], top_k=8)[0]
        completions = _endpoint(srv.url, generation="completions", tokenizer=str(tiny_dir))
        completions_api = completions.next_token_logprobs([CHAT], top_k=8)[0]
    assert chat_api.logprobs == pytest.approx(local, abs=1e-4)
    assert completions_api.logprobs == pytest.approx(local, abs=1e-4)
    with OpenAICompatServer(tiny, model_name="tiny", llama_cpp=True) as srv:  # the chat layout on both APIs
        chat_api = _endpoint(srv.url).next_token_logprobs([CHAT], top_k=8)[0]
        completions = _endpoint(srv.url, generation="completions", tokenizer=str(tiny_dir))
        completions_api = completions.next_token_logprobs([CHAT], top_k=8)[0]
    assert chat_api.logprobs == pytest.approx(local, abs=1e-4)
    assert completions_api.logprobs == pytest.approx(local, abs=1e-4)


def test_endpoint_without_top_logprobs_is_refused_in_one_line(tiny):
    with OpenAICompatServer(tiny, model_name="tiny", top_logprobs=False) as srv:
        with pytest.raises(OverseerError, match="without top_logprobs"):
            _endpoint(srv.url).next_token_logprobs([CHAT], top_k=3)


def test_unreachable_server_is_not_taken_for_missing_modes():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(GaveUp, match="cannot be reached"):
        _endpoint(f"http://127.0.0.1:{port}/v1", max_retries=0).scoring_modes()


def test_scoring_support_best_and_refusal():
    support = ScoringSupport(("first_token", "sampled"), server="llama.cpp", where="endpoint http://h/v1",
                             missing={"full": "HTTP 400: echo unsupported"})
    assert support.best() == "first_token"
    assert support.refusal("full") == (
        "endpoint http://h/v1 (llama.cpp) cannot score answer options in mode 'full' (needs the prompt's own "
        "log-probabilities: completions with echo=true and logprobs; HTTP 400: echo unsupported); it supports: "
        "first_token, sampled. Use --scoring first_token or --scoring auto")
    with pytest.raises(OverseerError, match="answers no scoring request"):
        ScoringSupport((), where="endpoint http://h/v1").best()
    nothing = ScoringSupport((), where="endpoint http://h/v1", missing={"sampled": "refused the request (HTTP 403)"})
    with pytest.raises(OverseerError, match=r"not even plain generation: refused the request \(HTTP 403\)$"):
        nothing.best()


def test_one_request_per_sample_where_the_server_refuses_n(tiny, tmp_path: Path):
    """A server that is not llama.cpp but refuses n > 1 is found by the probe and then treated as llama.cpp is."""
    from dataclasses import replace

    from overseer.models import GenerateConfig

    chat = Chat.user("Name a city.", assistant_prefix="The city is")
    river = Chat.user("Name a river.", assistant_prefix="The river is")
    config = GenerateConfig(max_new_tokens=3, temperature=1.0, n=3, seed=None)  # as selfcorrect asks a server
    with OpenAICompatServer(tiny, model_name="tiny", echo=False, slots=1) as srv:
        backend = EndpointBackend(srv.url, "tiny", cache_dir=str(tmp_path / "cache"), backoff_s=0.01)
        with pytest.raises(OverseerError, match="Field 'n'"):  # unnamed: nothing says it refuses n until asked
            backend.generate([chat], config)
        support = backend.scoring_modes()
        assert support.modes == ("first_token", "sampled") and support.server is None
        assert backend.one_sample_per_request  # the probe found that n > 1 is refused
        srv.chat_requests.clear()
        first = backend.generate([chat, river], config)
        assert all(len(row) == 3 and all(g.ok for g in row) for row in first)
        sent = list(srv.chat_requests)
        # unseeded: the server draws each sample, and the cache keeps the six apart
        assert len(sent) == 6 and {r["n"] for r in sent} == {1} and not any("seed" in r for r in sent)
        assert backend.generate([chat, river], config) == first and len(srv.chat_requests) == 6
        srv.chat_requests.clear()
        backend.generate([chat], replace(config, seed=2))
        assert [r["seed"] for r in srv.chat_requests] == [6, 7, 8]  # seed * n + i, as for llama.cpp
    with OpenAICompatServer(tiny, model_name="tiny") as srv:
        backend = _endpoint(srv.url)
        backend.scoring_modes()
        assert not backend.one_sample_per_request


def test_a_prefill_echoed_in_the_chat_answer_is_dropped():
    from overseer.models import Generation
    from overseer.models._endpoint import _without_prefix

    # llama.cpp's server answers a prefilled assistant turn with the prefill included
    assert _without_prefix(Generation("The answer is (c). Not known"), "The answer is (").text == "c). Not known"
    assert _without_prefix(Generation("c). Not known"), "The answer is (").text == "c). Not known"
    assert _without_prefix(Generation("anything"), "").text == "anything"


def test_several_samples_share_one_prefill_and_match_the_plain_path(tiny, monkeypatch: pytest.MonkeyPatch):
    import overseer.models._lm as lm_module
    from overseer.models import GenerateConfig, generate

    prompts = ["The answer is (", "Human: who was late, the nurse or the doctor?\n\nAssistant: The answer is (", "x"]
    config = GenerateConfig(max_new_tokens=4, temperature=1.0, n=5, seed=3)
    used = []
    shared = lm_module._shared_prefill

    def recording(model, ids, mask, copies):
        found = shared(model, ids, mask, copies)
        used.append(bool(found[2]))
        return found

    monkeypatch.setattr(lm_module, "_shared_prefill", recording)
    fast = generate(tiny, prompts, config, batch_size=2)
    assert used == [True, True]  # each batch's prompts ran once for their five samples
    monkeypatch.setattr(lm_module, "_shared_prefill", lambda model, ids, mask, copies: (ids, mask, {}))
    plain = generate(tiny, prompts, config, batch_size=2)
    assert [[g.token_ids for g in row] for row in fast] == [[g.token_ids for g in row] for row in plain]
    assert len({g.token_ids for g in fast[1]}) > 1
    for row_fast, row_plain in zip(fast, plain, strict=True):
        for a, b in zip(row_fast, row_plain, strict=True):
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
