"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 serving a tiny model."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from overseer.errors import OverseerError
from overseer.models import Chat, EndpointBackend, load_model, normalize_base_url, score_options
from overseer.models._endpoint import option_logprob
from overseer.models._guarded import RateLimiter
from overseer.models._tiny import build_tiny_causal_lm
from overseer.testing import OpenAICompatServer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    return load_model(str(build_tiny_causal_lm(tmp_path_factory.mktemp("endpoint_lm"))), device="cpu")


@pytest.fixture()
def server(tiny):
    with OpenAICompatServer(tiny, model_name="tiny") as srv:
        yield srv


def _backend(url: str, cache: Path | None, **kw) -> EndpointBackend:
    return EndpointBackend(url, "tiny", cache_dir=cache, use_cache=cache is not None, backoff_s=0.01, **kw)


CHATS = [
    Chat.of([{"role": "user", "content": "Fill in: The nurse said that _ was late."}], "The nurse said that"),
    Chat.of([{"role": "user", "content": 'Admit? Please answer "yes" or "no".'}], 'my answer would be "'),
]
OPTIONS = [[" she", " he", " they"], ["yes", "no"]]


def test_base_url_normalisation():
    assert normalize_base_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000/v1"
    assert normalize_base_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"
    assert normalize_base_url("https://host/openai/v1") == "https://host/openai/v1"
    with pytest.raises(OverseerError, match="not an http"):
        normalize_base_url("127.0.0.1:8000")


def test_option_logprob_sums_the_option_tokens_only():
    lp = {"tokens": ["The", " answer", " is", " (", "a", ")", "!"],
          "token_logprobs": [None, -1.0, -2.0, -0.5, -0.25, -0.125, -9.0],
          "text_offset": [0, 3, 10, 13, 15, 16, 17]}
    # prompt "The answer is" (13 chars), option " (a)" -> chars 13..17; "!" is a generated token after it
    assert option_logprob(lp, 13, 17) == (-0.875, 3)
    with pytest.raises(OverseerError, match="no logprobs"):
        option_logprob(None, 0, 1)
    with pytest.raises(OverseerError, match="no logprobs"):
        option_logprob({"tokens": [], "token_logprobs": [], "text_offset": []}, 0, 1)


def test_endpoint_scores_match_local_scoring(tiny, server, tmp_path: Path):
    backend = _backend(server.url, tmp_path / "cache", tokenizer=tiny.tokenizer)
    remote = backend.score_options(CHATS, OPTIONS)
    local = score_options(tiny, [backend.render(c) for c in CHATS], OPTIONS)
    for r, loc in zip(remote, local, strict=True):
        assert r.ok
        assert r.num_tokens == loc.num_tokens
        assert r.logprobs == pytest.approx(loc.logprobs, abs=1e-3)
    assert server.requests == 2  # one request per item, all options in it


def test_cache_makes_a_rerun_send_nothing(server, tmp_path: Path):
    first = _backend(server.url, tmp_path / "cache")
    a = first.score_options(CHATS, OPTIONS)
    sent = server.requests
    second = _backend(server.url, tmp_path / "cache")
    b = second.score_options(CHATS, OPTIONS)
    assert server.requests == sent and second.requests_sent == 0
    assert [x.logprobs for x in a] == [x.logprobs for x in b]


def test_retries_with_backoff_after_server_errors(tiny, tmp_path: Path):
    with OpenAICompatServer(tiny, model_name="tiny", fail_first=2) as srv:
        backend = _backend(srv.url, None, concurrency=1)
        (sc,) = backend.score_options(CHATS[:1], OPTIONS[:1])
        assert sc.ok and srv.requests == 3 and backend.requests_sent == 3
    with OpenAICompatServer(tiny, model_name="tiny", fail_first=100) as srv:
        with pytest.raises(OverseerError, match="failed after 3 attempts in .*; last error: HTTP 503"):
            _backend(srv.url, None, max_retries=2).score_options(CHATS[:1], OPTIONS[:1])


def test_retry_lines_name_the_reason_and_the_deadline_bounds_waiting(tiny, capsys: pytest.CaptureFixture):
    with OpenAICompatServer(tiny, model_name="tiny", fail_first=100) as srv:
        backend = EndpointBackend(srv.url, "tiny", use_cache=False, backoff_s=0.2, max_retries=10, deadline_s=1.0)
        started = time.monotonic()
        with pytest.raises(OverseerError, match="last error: HTTP 503"):
            backend.score_options(CHATS[:1], OPTIONS[:1])
        assert time.monotonic() - started < 3  # 10 retries would take 0.2*(2^10-1) s without the deadline
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and all("HTTP 503: warming up" in line and "retry" in line for line in lines)


def test_failed_answers_are_never_cached(tiny, tmp_path: Path):
    with OpenAICompatServer(tiny, model_name="tiny", no_logprobs=True) as srv:
        with pytest.raises(OverseerError, match="no logprobs"):
            _backend(srv.url, tmp_path / "cache").score_options(CHATS[:1], OPTIONS[:1])
    with OpenAICompatServer(tiny, model_name="tiny", fail_first=100) as srv:
        with pytest.raises(OverseerError):
            _backend(srv.url, tmp_path / "cache", max_retries=0).score_options(CHATS[:1], OPTIONS[:1])
    with OpenAICompatServer(tiny, model_name="tiny") as srv:  # the server is fixed: the rerun asks again
        fixed = _backend(srv.url, tmp_path / "cache")
        (sc,) = fixed.score_options(CHATS[:1], OPTIONS[:1])
        assert sc.ok and fixed.stats["cache_hits"] == 0 and srv.requests == 1
        again = _backend(srv.url, tmp_path / "cache")
        again.score_options(CHATS[:1], OPTIONS[:1])
        assert again.stats["cache_hits"] == 1 and srv.requests == 1
        refreshed = _backend(srv.url, tmp_path / "cache", refresh_cache=True)
        refreshed.score_options(CHATS[:1], OPTIONS[:1])
        assert refreshed.stats["cache_hits"] == 0 and srv.requests == 2


def _recording_server(tiny):
    srv = OpenAICompatServer(tiny, model_name="tiny")
    seen: list[dict] = []
    handler = srv._httpd.RequestHandlerClass
    original = handler.do_POST

    def do_post(self):
        seen.append({k.lower(): v for k, v in self.headers.items()})
        original(self)

    handler.do_POST = do_post
    return srv, seen


def test_no_api_key_is_sent_unless_a_variable_is_named(tiny, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    monkeypatch.setenv("OVERSEER_API_KEY", "sk-must-not-leak-either")
    srv, seen = _recording_server(tiny)
    with srv:
        _backend(srv.url, None).score_options(CHATS[:1], OPTIONS[:1])
        assert seen and "authorization" not in seen[-1]
        assert not any("sk-must-not-leak" in v for v in seen[-1].values())
        monkeypatch.setenv("MY_SERVER_KEY", "sk-for-this-server")
        _backend(srv.url, None, api_key_env="MY_SERVER_KEY").score_options(CHATS[:1], OPTIONS[:1])
        assert seen[-1]["authorization"] == "Bearer sk-for-this-server"


def test_key_rules_are_one_line_errors(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("UNSET_KEY_VAR", raising=False)
    with pytest.raises(OverseerError, match="'UNSET_KEY_VAR' is unset"):
        _backend("http://127.0.0.1:9/v1", None, api_key_env="UNSET_KEY_VAR").client()
    monkeypatch.setenv("SET_KEY_VAR", "sk-x")
    with pytest.raises(OverseerError, match="plain http"):
        _backend("http://example.invalid/v1", None, api_key_env="SET_KEY_VAR").client()
    _backend("http://example.invalid/v1", None, api_key_env="SET_KEY_VAR", allow_insecure_key=True).client()
    _backend("https://example.invalid/v1", None, api_key_env="SET_KEY_VAR").client()


def test_spec_strings_build_the_endpoint_backend():
    from overseer.models import backend_identity, get_backend

    backend = get_backend("openai/my-model@http://127.0.0.1:8000", timeout_s=5)
    assert isinstance(backend, EndpointBackend) and backend.model == "my-model"
    assert backend.url == "http://127.0.0.1:8000/v1" and backend.timeout_s == 5
    assert backend_identity("openai/my-model@http://127.0.0.1:8000/v1") == backend.identity()
    with pytest.raises(OverseerError, match="unknown backend prefix 'vllm'"):
        get_backend("vllm/my-model@http://127.0.0.1:8000/v1")
    with pytest.raises(OverseerError, match="has no option 'api_key'"):
        get_backend("openai/m@http://127.0.0.1:8000/v1", api_key="sk-no-keys-in-specs-or-flags")


def test_refusal_and_missing_logprobs_are_one_line_errors(tiny):
    with OpenAICompatServer(tiny, refuse=True) as srv:
        with pytest.raises(OverseerError) as err:
            _backend(srv.url, None).score_options(CHATS[:1], OPTIONS[:1])
        assert "refused the request (HTTP 403)" in str(err.value) and "\n" not in str(err.value)
    with OpenAICompatServer(tiny, no_logprobs=True) as srv:
        with pytest.raises(OverseerError, match="no logprobs"):
            _backend(srv.url, None).score_options(CHATS[:1], OPTIONS[:1])


def test_server_that_ignores_echo_is_caught(tiny, monkeypatch: pytest.MonkeyPatch):
    # like llama.cpp issue 27174: echo accepted, but only the generated token comes back
    with OpenAICompatServer(tiny) as srv:
        real = srv._completions

        def no_echo(body):
            out = real({**body, "echo": False})
            for choice in out["choices"]:
                choice["logprobs"] = {"tokens": ["x"], "token_logprobs": [-0.1], "text_offset": [0]}
            return out

        monkeypatch.setattr(srv, "_completions", no_echo)
        with pytest.raises(OverseerError, match="did not echo the prompt"):
            _backend(srv.url, None).score_options(CHATS[:1], OPTIONS[:1])


def _dead_port() -> int:
    import socket

    with socket.socket() as s:  # a loopback port that nobody listens on
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_never_answered_is_one_error_without_retries(capsys: pytest.CaptureFixture):
    """Concurrent requests to a refused address: no retry lines, one error, every request stopped at once."""
    backend = _backend(f"http://127.0.0.1:{_dead_port()}/v1", None, max_retries=3, concurrency=4)
    started = time.monotonic()
    with pytest.raises(OverseerError, match="cannot be reached: cannot connect.*is the server running") as err:
        backend.score_options(CHATS * 8, OPTIONS * 8)
    assert "\n" not in str(err.value) and time.monotonic() - started < 5
    assert capsys.readouterr().err == "" and backend.stats["retries"] == 0
    assert backend.requests_sent <= 4  # at most the requests already in flight; none after the refusal


def test_a_server_that_answered_before_and_went_away_is_retried_with_a_line_each(tiny, capsys: pytest.CaptureFixture):
    with OpenAICompatServer(tiny, model_name="tiny") as srv:
        backend = _backend(srv.url, None, max_retries=1, concurrency=1, timeout_s=2)
        assert backend.score_options(CHATS[:1], OPTIONS[:1])[0].ok
    with pytest.raises(OverseerError, match="failed after 2 attempts; |failed after 2 attempts in"):
        backend.score_options(CHATS[1:], OPTIONS[1:])
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "cannot connect" in lines[0] and "retry 1/1" in lines[0]


def test_generation_through_chat_and_completions(tiny, server):
    from overseer.models import GenerateConfig, generate

    greedy = GenerateConfig(max_new_tokens=4)
    chat_backend = _backend(server.url, None, generation="chat")
    ((remote,),) = chat_backend.generate(CHATS[:1], greedy)
    ((local,),) = generate(tiny, [_chatml(tiny, CHATS[0])], greedy)
    # the server continues the prefilled assistant turn with its chat template: same tokens, same text
    assert remote.token_ids == local.token_ids and len(local.token_ids) > 0
    assert remote.text == local.text and remote.finish_reason == local.finish_reason
    assert remote.logprobs == pytest.approx(local.logprobs, abs=1e-4)
    comp = _backend(server.url, None, generation="completions", tokenizer=tiny.tokenizer)
    ((via_completions,),) = comp.generate(CHATS[:1], greedy)
    assert via_completions.token_ids == local.token_ids


def test_sampling_parameters_reach_the_server(tiny, server):
    from overseer.models import GenerateConfig, generate

    config = GenerateConfig(max_new_tokens=6, temperature=1.5, top_p=0.9, n=3, seed=7)
    backend = _backend(server.url, None)
    (remote,) = backend.generate(["the city of"], config)
    (local,) = generate(tiny, ["the city of"], config)
    assert [g.token_ids for g in remote] == [g.token_ids for g in local]
    assert len({g.token_ids for g in remote}) > 1  # three samples at temperature 1.5 are not all equal


def test_llama_cpp_logprobs_and_token_ids_are_read_from_the_chat_layout(tiny):
    """llama.cpp answers both APIs with ``logprobs.content`` entries that carry the token id."""
    from overseer.models import GenerateConfig, generate

    greedy = GenerateConfig(max_new_tokens=5)
    with OpenAICompatServer(tiny, model_name="tiny", llama_cpp=True) as srv:
        backend = _backend(srv.url, None)
        ((raw,),) = backend.generate(["the city of"], greedy)
        ((chat,),) = backend.generate(CHATS[:1], greedy)
    ((local,),) = generate(tiny, ["the city of"], greedy)
    assert raw.token_ids == local.token_ids and len(raw.token_ids) == 5
    assert raw.logprobs == pytest.approx(local.logprobs, abs=1e-4)
    assert len(chat.token_ids) == len(chat.logprobs) > 0


def test_llama_cpp_is_named_once_and_gets_untruncated_sampling_and_its_repeated_prefill_cut(tiny):
    """One look-up names the server; llama.cpp's truncation is turned off and the prefill it repeats removed."""
    from overseer.models import GenerateConfig

    configs = (GenerateConfig(max_new_tokens=4), GenerateConfig(max_new_tokens=4, temperature=1.0, seed=1))
    texts, bodies, names = [], [], []
    for knobs in ({"llama_cpp": True}, {}):
        with OpenAICompatServer(tiny, model_name="tiny", **knobs) as srv:
            backend = _backend(srv.url, None)
            texts.append([backend.generate(CHATS[:1], c)[0][0].text for c in configs])
            names.append(backend.server_name())
            bodies.append(list(srv.chat_requests))
    assert names == ["llama.cpp", None]
    # llama.cpp answers "The nurse said that ..."; the backend keeps the continuation, as from any server
    assert texts[0] == texts[1] and not texts[0][0].startswith(CHATS[0].assistant_prefix)
    (greedy, sampled), (plain_greedy, plain_sampled) = bodies
    assert "top_k" not in greedy and (sampled["top_k"], sampled["min_p"], sampled["top_p"]) == (0, 0.0, 1.0)
    assert not any(key in body for key in ("top_k", "min_p") for body in (plain_greedy, plain_sampled))


def test_text_without_logprobs_is_warned_about_once(tiny):
    from overseer.models import GenerateConfig

    with OpenAICompatServer(tiny, model_name="tiny", no_logprobs=True) as srv:
        backend = _backend(srv.url, None)
        with pytest.warns(UserWarning, match="without log-probabilities") as caught:
            backend.generate(["the city of", "a cat"], GenerateConfig(max_new_tokens=3))
    assert len(caught) == 1


def test_llama_cpp_samples_get_seeds_that_different_seeds_never_share(tiny):
    """llama.cpp seeds sample i with seed + i and refuses n above its slots: one request per sample, seed*n+i."""
    from overseer.models import GenerateConfig

    def samples(srv: OpenAICompatServer, seed: int, n: int = 3) -> list[tuple[int, ...]]:
        config = GenerateConfig(max_new_tokens=6, temperature=1.5, n=n, seed=seed)
        return [g.token_ids for g in _backend(srv.url, None).generate(["the city of"], config)[0]]

    with OpenAICompatServer(tiny, model_name="tiny", llama_cpp=True, slots=1) as srv:
        request = urllib.request.Request(f"{srv.url}/completions", data=json.dumps({"prompt": "a", "n": 2}).encode())
        with pytest.raises(urllib.error.HTTPError, match="400"):  # as llama.cpp answers n above its slots
            urllib.request.urlopen(request)
        requests_before = srv.requests
        zero, one = samples(srv, 0), samples(srv, 1)
        singles = [samples(srv, s, n=1)[0] for s in range(6)]
        assert srv.requests - requests_before == 3 + 3 + 6  # n=3 on a one-slot server: three requests each
    assert zero == singles[:3] and one == singles[3:]  # seed 0 -> seeds 0,1,2; seed 1 -> seeds 3,4,5
    assert not set(zero) & set(one) and len(set(zero + one)) > 3
    with OpenAICompatServer(tiny, model_name="tiny") as plain:  # one generator per request: n sent as is
        assert len(samples(plain, 1)) == 3 and plain.requests == 1


def test_unseeded_llama_cpp_samples_are_cached_apart(tiny, tmp_path: Path):
    from overseer.models import GenerateConfig

    config = GenerateConfig(max_new_tokens=6, temperature=1.5, n=4, seed=None)
    with OpenAICompatServer(tiny, model_name="tiny", llama_cpp=True) as srv:
        (first,) = _backend(srv.url, tmp_path / "cache").generate(["the city of"], config)
        (again,) = _backend(srv.url, tmp_path / "cache").generate(["the city of"], config)
        assert srv.requests == 4  # four cache keys: one answer is not served four times
    assert [g.token_ids for g in again] == [g.token_ids for g in first]


def _chatml(tiny, chat: Chat) -> str:
    from overseer.models import format_chat

    return format_chat(tiny.tokenizer, chat)


def test_rate_limiter_spaces_requests():
    limiter = RateLimiter(per_second=50)
    start = time.monotonic()
    for _ in range(6):
        limiter.wait()
    assert time.monotonic() - start >= 5 / 50 * 0.9


def test_server_binds_loopback_only(tiny):
    with pytest.raises(OverseerError, match="loopback"):
        OpenAICompatServer(tiny, host="0.0.0.0")
