"""Bad inputs and faults end in one line and leave nothing half-written.

The quick cases of ``benchmarks/bad_inputs.py`` run here as real ``python -m overseer`` processes
(the whole list, with the slow faults, is the benchmark); below them, library-level tests of the
faults that list found.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from overseer.errors import OverseerError

REPO = Path(__file__).resolve().parents[2]


def _load_script():
    spec = importlib.util.spec_from_file_location("bad_inputs", REPO / "benchmarks" / "bad_inputs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bad_inputs"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bad_inputs = _load_script()


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    bench = bad_inputs.Bench(tmp_path_factory.mktemp("bad-inputs"), timeout=120)
    try:
        yield bench
    finally:
        bench.close()


@pytest.mark.parametrize("name", bad_inputs.quick_cases())
def test_bad_input_ends_cleanly(name: str, bench) -> None:
    outcome = bench.run_case(name)
    if outcome.skipped:  # only a machine with CUDA skips the no-CUDA case
        pytest.skip(outcome.skipped)
    assert outcome.clean, f"{'; '.join(outcome.problems)}\n{outcome.shown}"


def test_the_list_covers_at_least_30_cases_and_quick_ones() -> None:
    assert len(bad_inputs.CASES) >= 30
    assert 10 <= len(bad_inputs.quick_cases()) < len(bad_inputs.CASES)


def test_the_checker_catches_what_it_must() -> None:
    """The judge itself: a traceback, a second line, a wrong status or a new file make a case unclean."""
    result = bad_inputs.Result
    good = result([], 2, "", "error: unknown method 'magic'; allowed: xent\n", 0.1)
    assert bad_inputs.check(good, "error", "magic") == []
    assert bad_inputs.check(result([], 1, "", "Traceback (most recent call last):\n  boom\nValueError: x\n", 0.1),
                            "error")
    assert bad_inputs.check(result([], 2, "", "error: a\nerror: b\n", 0.1), "error")
    assert bad_inputs.check(result([], 0, "", "error: a\n", 0.1), "error")
    assert bad_inputs.check(result([], None, "", "", 60.0), "error") == ["timed out after 60s"]
    assert bad_inputs.check(result([], 0, "", "warning: damaged; recomputing\n", 0.1), "warn", "damaged") == []
    assert bad_inputs.check(result([], 0, "", "warning: a\nwarning: b\n", 0.1), "warn")
    before = {"runs": (-1, 0)}
    assert bad_inputs.changed(before, {**before, "runs/w2s-1": (-1, 0), "runs/w2s-1/config.json": (10, 1)})
    assert bad_inputs.changed({}, {"runs": (-1, 0)}) == [f"{bad_inputs.EMPTY_DIR_NOTE} runs"]


# --------------------------------------------------------------------------- the faults found, library level


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory):
    from overseer.models import load_model
    from overseer.models._tiny import build_tiny_causal_lm

    return load_model(str(build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"))), device="cpu")


PROMPTS, OPTIONS = ["Human: Admit? Answer yes or no.\n\nAssistant: my answer is"], [[" yes", " no"]]


def _backend(url: str, cache: Path):
    from overseer.models import EndpointBackend

    return EndpointBackend(url, "tiny", cache_dir=cache, backoff_s=0.01, max_retries=0)


def test_an_answer_without_logprobs_is_not_cached_so_the_fixed_server_serves_the_rerun(tiny_lm, tmp_path: Path):
    from overseer.testing import OpenAICompatServer

    with OpenAICompatServer(tiny_lm, model_name="tiny", no_logprobs=True) as srv:
        with pytest.raises(OverseerError, match="no logprobs"):
            _backend(srv.url, tmp_path).score_options(PROMPTS, OPTIONS)
        srv.no_logprobs = False  # the same server (the same URL) is fixed
        rerun = _backend(srv.url, tmp_path)
        (scores,) = rerun.score_options(PROMPTS, OPTIONS)
        assert scores.ok and rerun.stats["cache_hits"] == 0 and rerun.requests_sent == 1
        cached = _backend(srv.url, tmp_path)
        assert cached.score_options(PROMPTS, OPTIONS)[0].logprobs == scores.logprobs
        assert cached.stats["cache_hits"] == 1 and cached.requests_sent == 0


def test_an_unusable_answer_already_in_the_cache_is_asked_again(tiny_lm, tmp_path: Path):
    from overseer.models._guarded import ResponseCache
    from overseer.testing import OpenAICompatServer

    with OpenAICompatServer(tiny_lm, model_name="tiny") as srv:
        (good,) = _backend(srv.url, tmp_path).score_options(PROMPTS, OPTIONS)
        cache = ResponseCache(tmp_path / "responses.sqlite")
        with sqlite3.connect(cache.path) as conn:
            ((key, body),) = conn.execute("SELECT key, body FROM responses").fetchall()
        poisoned = __import__("json").loads(body)
        for choice in poisoned["choices"]:
            choice["logprobs"] = None  # what an older version cached from a server without logprobs
        cache.put(key, poisoned)
        again = _backend(srv.url, tmp_path)
        (scores,) = again.score_options(PROMPTS, OPTIONS)
        assert scores.logprobs == good.logprobs and again.requests_sent == 1 and again.stats["cache_hits"] == 0


def test_an_endpoint_cache_that_cannot_be_made_is_one_warning_and_the_scores_come(
        tiny_lm, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from overseer.testing import OpenAICompatServer

    blocker = tmp_path / "a-file"
    blocker.write_text("the cache directory would have to be inside this file\n")
    with OpenAICompatServer(tiny_lm, model_name="tiny") as srv:
        backend = _backend(srv.url, blocker / "endpoint")
        (scores,) = backend.score_options(PROMPTS * 2, OPTIONS * 2)[:1]
    assert scores.ok
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: cannot use the endpoint response cache"), err


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty; it needs a header row"), (b",race,sex,LSAT,UGPA\n0,Wh\xefte,1,39.0,3.1\n", "as UTF-8 CSV")],
)
def test_an_empty_or_non_utf8_law_school_file_is_one_error(content: bytes, message: str, tmp_path: Path) -> None:
    from overseer.data.law_school import load_students

    path = tmp_path / "law_data.csv"
    path.write_bytes(content)
    with pytest.raises(OverseerError, match=message):
        load_students(path, 10, 0)


def test_a_non_utf8_or_empty_bbq_file_is_one_error(tmp_path: Path) -> None:
    from overseer.data.bbq import load_bbq

    (tmp_path / "Age.jsonl").write_bytes(b'{"context": "gr\xe4ndfather"}\n')
    with pytest.raises(OverseerError, match="cannot read BBQ file .*Age.jsonl as UTF-8"):
        load_bbq(tmp_path)
    (tmp_path / "Age.jsonl").write_text("\n")
    with pytest.raises(OverseerError, match="Age.jsonl holds no records"):
        load_bbq(tmp_path)


def test_a_non_utf8_winogender_file_is_one_error(tmp_path: Path) -> None:
    from overseer.data.winogender import load_winogender

    (tmp_path / "templates.tsv").write_bytes(b"occupation(0)\tother-participant(1)\tanswer\tsentence\nnurse\xff\n")
    with pytest.raises(OverseerError, match="cannot read Winogender file .*templates.tsv as UTF-8"):
        load_winogender(tmp_path)


@pytest.mark.parametrize(("content", "message"), [(b"n_train: 10\nnote: caf\xe9\n", "is not UTF-8 text"),
                                                  (None, "is a directory")])
def test_a_non_utf8_or_directory_config_is_one_error(content: bytes | None, message: str, tmp_path: Path) -> None:
    from overseer._yaml import read_yaml

    path = tmp_path / "c.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(OverseerError, match=message):
        read_yaml(path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["w2s", "run", "--n-trian", "5"], "error: unrecognized arguments: --n-trian 5 (see: overseer w2s run --help)"),
        (["w2s", "run", "--warmup-schedule", "bogus"], "error: argument --warmup-schedule: invalid choice: 'bogus'"),
        (["generate", "--temperature", "hot", "hi"], "error: argument --temperature: invalid float value: 'hot'"),
        (["w2s", "sweep"], "error: the following arguments are required: --config (see: overseer w2s sweep --help)"),
    ],
)
def test_a_usage_error_is_one_error_line_and_status_2(argv: list[str], message: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from overseer.cli.main import main

    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message), err
    assert captured.out == ""


def test_help_still_prints_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    from overseer.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["generate", "--help"])
    assert info.value.code == 0 and "--temperature" in capsys.readouterr().out


def test_an_endpoint_that_is_not_http_is_named_as_such() -> None:
    from overseer.selfcorrect import SelfCorrectConfig

    with pytest.raises(OverseerError, match=r"endpoint 'ftp://127.0.0.1/v1' is not an http\(s\) URL"):
        SelfCorrectConfig(models=("tiny",), endpoint="ftp://127.0.0.1/v1")
    assert SelfCorrectConfig(models=("tiny",), endpoint="HTTP://127.0.0.1:8000/v1").endpoint
