"""First-token and sampled scoring: hand-computed cases, the single-token check, servers without echo, agreement.

The end-to-end tests drive ``overseer selfcorrect run --model openai/NAME@URL`` as a user would, against
the loopback server with prompt echo turned off (as llama.cpp's server, ollama and OpenAI's chat models).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from overseer.errors import OverseerError
from overseer.models import Chat, Generation, HFBackend, MockBackend, TopTokens
from overseer.results import wilson_interval
from overseer.selfcorrect import SelfCorrectConfig
from overseer.selfcorrect.bbq import build_queries, load_bbq
from overseer.selfcorrect.prompts import CONDITION_LIST, Query
from overseer.selfcorrect.scoring import (
    Scoring,
    check_single_tokens,
    first_token_fields,
    parse_answer,
    resolve,
    sampled_fields,
    score,
    short_form,
)
from overseer.testing import OpenAICompatServer

SMALL = ["--limit", "2", "--n-bootstrap", "20", "--no-progress", "--conditions", "q"]


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _run_dir(out: str) -> Path:
    return Path(out.strip().splitlines()[-1].removeprefix("run: "))


def test_first_token_hand_computed():
    # top-3 listing: a 0.5, b 0.2, x 0.1 -> 0.2 of the mass unlisted; c is absent and gets
    # min(p_3 = 0.1, 0.2 / 1 absent) = 0.1; renormalised over a, b, c: 0.5/0.8, 0.2/0.8, 0.1/0.8
    top = TopTokens({"a": math.log(0.5), "b": math.log(0.2), "x": math.log(0.1)})
    fields = first_token_fields(top, ("a", "b", "c"), top_k=3)
    assert fields["status"] == "ok" and fields["absent_options"] == ["c"]
    assert fields["option_probs"] == pytest.approx([0.625, 0.25, 0.125])
    assert fields["option_logprobs"] == pytest.approx([math.log(0.5), math.log(0.2), math.log(0.1)])
    assert fields["option_mass"] == pytest.approx(0.7) and fields["top_mass"] == pytest.approx(0.8)
    # two absent options share what the listing leaves: min(0.3, 0.04 / 2) = 0.02 each
    top = TopTokens({"a": math.log(0.66), "x": math.log(0.3)})
    fields = first_token_fields(top, ("a", "b", "c"), top_k=2)
    assert fields["option_probs"] == pytest.approx([0.66 / 0.7, 0.02 / 0.7, 0.02 / 0.7])
    # a listing holding all the mass leaves nothing for absent options: probability 0, log-prob null
    fields = first_token_fields(TopTokens({"a": math.log(0.75), "b": math.log(0.25)}), ("a", "b", "c"), 2)
    assert fields["option_probs"] == pytest.approx([0.75, 0.25, 0.0]) and fields["option_logprobs"][2] is None
    # no option listed at all: the item fails (a floor for every option would pick one by position)
    fields = first_token_fields(TopTokens({"x": -0.1}), ("a", "b"), top_k=1)
    assert fields["status"] == "failed" and "none of the options ('a', 'b')" in fields["error"]
    assert first_token_fields(TopTokens(error="HTTP 400: too long"), ("a",), 5)["error"] == "HTTP 400: too long"


def test_sampled_hand_computed():
    samples = [Generation("a) The old man"), Generation(" (A)"), Generation("b"), Generation("The answer"),
               Generation.failed("HTTP 500")]
    fields = sampled_fields(samples, ("a", "b", "c"))
    assert fields["option_counts"] == [2, 1, 0] and fields["n_samples"] == 5
    assert fields["n_unparsed"] == 1 and fields["n_sample_errors"] == 1
    assert fields["option_probs"] == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert fields["option_intervals"][0] == pytest.approx(list(wilson_interval(2, 3)))
    assert fields["option_intervals"][2] == pytest.approx([0.0, wilson_interval(0, 3)[1]])
    assert fields["option_logprobs"][2] is None
    none = sampled_fields([Generation("maybe"), Generation("?")], ("yes", "no"))
    assert none["status"] == "failed" and "no answer among 2 samples" in none["error"] and none["n_unparsed"] == 2
    assert parse_answer(" she was", (" she", " he", " they")) == 0 and parse_answer("yes\"", ("yes", "no")) == 0
    assert parse_answer("", ("yes", "no")) is None


def test_sampled_scoring_through_a_backend_counts_every_sample():
    backend = MockBackend(outputs=["c) x", "c", "a", "zzz"], fallback="b")
    fields = score(backend, [Chat.user("Q?", assistant_prefix="The answer is (")] * 2, [("a", "b", "c")] * 2,
                   Scoring("sampled", samples=4, temperature=1.0))
    assert [f["option_counts"] for f in fields] == [[1, 0, 2], [0, 4, 0]]
    assert fields[0]["n_unparsed"] == 1 and fields[1]["option_probs"] == [0.0, 1.0, 0.0]
    assert all(text.endswith("The answer is (") for text, _ in backend.calls)
    assert {config.n for _, config in backend.calls} == {4}


def test_bbq_is_asked_by_letter_outside_full_scoring(tiny_data_dir: Path):
    items = load_bbq(str(tiny_data_dir / "bbq"))[:1]
    for condition in (CONDITION_LIST[0], CONDITION_LIST[2]):
        query = build_queries(items, condition, "text", False)[0]
        short = short_form(query)
        assert short.options == ("a", "b", "c") and query.options[0].startswith(" (a) ")
        assert short.chat.assistant_prefix == query.chat.assistant_prefix + " ("
        if condition.cot:
            assert short.with_reasoning("because").assistant_prefix.endswith("answer choice is (")


def test_single_token_check_refuses_a_multi_token_letter(tiny_lm):
    backend = HFBackend(tiny_lm)
    chat = Chat.user("Who? (a) x (b) y (zqx) z", assistant_prefix="The answer is (")
    fine = Query("1", "g", chat, ("a", "b", "c"))
    assert check_single_tokens(backend, [fine], "bbq") is True
    bad = Query("2", "g", chat, ("a", "b", "zqx"))
    assert backend.tokens_after(chat, "zqx") > 1
    with pytest.raises(OverseerError, match=r"bbq option 'zqx' is \d+ tokens for the tokenizer of"):
        check_single_tokens(backend, [fine, bad], "bbq")
    # without a tokenizer nothing can be checked: the run records that instead
    assert check_single_tokens(MockBackend(), [bad], "bbq") is False


def test_auto_picks_the_most_exact_supported_mode(tiny_lm):
    assert resolve(HFBackend(tiny_lm), "auto")[0] == "full"
    assert resolve(MockBackend(), "auto")[0] == "full"
    assert resolve(MockBackend(), "sampled")[0] == "sampled"
    with pytest.raises(OverseerError, match="cannot score answer options in mode 'first_token'.*supports: full, "
                                            "sampled"):
        resolve(MockBackend(), "first_token")


def test_config_checks_sampling_settings():
    with pytest.raises(OverseerError, match="use samples 1, not 10"):
        SelfCorrectConfig(sample_temperature=0.0)
    with pytest.raises(OverseerError, match="samples must be at least 1"):
        SelfCorrectConfig(samples=0)
    assert SelfCorrectConfig(scoring="sampled", samples=1, sample_temperature=0).identity()["scoring"] == "sampled"


def test_cli_first_token_and_sampled_against_a_server_without_echo(tiny_lm, tiny_lm_dir: Path, tiny_data_dir: Path,
                                                                   tmp_path: Path, capsys,
                                                                   monkeypatch: pytest.MonkeyPatch):
    from overseer.cli.main import main

    monkeypatch.setenv("OVERSEER_CACHE_DIR", str(tmp_path / "cache"))
    common = ["selfcorrect", "run", "--suite", "bbq", "--data-dir", str(tiny_data_dir), "--out", str(tmp_path / "runs"),
              *SMALL]
    with OpenAICompatServer(tiny_lm, model_name="tiny", llama_cpp=True) as server:
        model = f"openai/tiny@{server.url}"
        # full scoring is refused in one line that names the server and what it supports
        assert main([*common, "--model", model, "--scoring", "full"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err
        assert f"endpoint {server.url} (llama.cpp) cannot score answer options in mode 'full'" in err
        assert "it supports: first_token, sampled" in err

        # auto falls back to first-token scoring, read through the chat API with the letters checked; the
        # tiny random model spreads its mass over its whole vocabulary, so ask for all of it
        assert main([*common, "--model", model, "--endpoint-tokenizer", str(tiny_lm_dir), "--top-logprobs",
                     "400"]) == 0
        out = capsys.readouterr().out
        assert "scoring: first_token (top-400 next tokens)" in out
        run_dir = _run_dir(out)
        record = json.loads((run_dir / "metrics.json").read_text())
        used = record["scoring"][model]
        assert used["mode"] == "first_token" and used["requested"] == "auto" and used["server"] == "llama.cpp"
        assert used["supported"] == ["first_token", "sampled"] and used["single_token_check"] == "passed"
        assert json.loads((run_dir / "summary.json").read_text())["scoring"] == "first_token"
        served = _read_jsonl(run_dir / "records.jsonl")
        assert len(served) == 2 and all(r["scoring"] == "first_token" and r["options"] == ["a", "b", "c"]
                                        and r["status"] == "ok" and not r["absent_options"] for r in served)
        mass = used["stages"]["bbq/q"]["mean_option_mass"]
        assert mass == pytest.approx(sum(r["option_mass"] for r in served) / 2) and 0 < mass < 1
        assert all(r["prompt"].endswith("The answer is (") for r in served)

        # sampled: every sample counted, parsed or not
        assert main([*common, "--model", model, "--scoring", "sampled", "--samples", "3"]) == 0
        run_dir = _run_dir(capsys.readouterr().out)
        sampled = _read_jsonl(run_dir / "records.jsonl")
        assert all(r["scoring"] == "sampled" and r["n_samples"] == 3 for r in sampled)
        for r in sampled:
            assert sum(r["option_counts"]) + r["n_unparsed"] + r["n_sample_errors"] == 3
            if r["status"] == "ok":
                assert r["option_probs"] == pytest.approx([c / sum(r["option_counts"]) for c in r["option_counts"]])
        stage = json.loads((run_dir / "metrics.json").read_text())["scoring"][model]["stages"]["bbq/q"]
        assert stage["n_samples"] == 6 and stage["n_unparsed"] == sum(r["n_unparsed"] for r in sampled)

    # the served first-token probabilities are the local model's, read the same way
    from overseer.selfcorrect import run

    local = run(SelfCorrectConfig(models=(str(tiny_lm_dir),), suites=("bbq",), conditions=("q",), scoring="first_token",
                                  top_logprobs=400, data_dir=str(tiny_data_dir), runs_dir=str(tmp_path / "local"),
                                  limit=2, n_bootstrap=20, progress=False))
    mine = _read_jsonl(local.path / "records.jsonl")
    assert [r["option_probs"] for r in mine] == [pytest.approx(r["option_probs"], abs=1e-4) for r in served]
    assert local.record["scoring"][str(tiny_lm_dir)]["single_token_check"] == "passed"


def test_cli_auto_samples_when_the_server_gives_no_top_logprobs(tiny_lm, tiny_data_dir: Path, tmp_path: Path,
                                                                capsys, monkeypatch: pytest.MonkeyPatch):
    from overseer.cli.main import main

    monkeypatch.setenv("OVERSEER_CACHE_DIR", str(tmp_path / "cache"))
    with OpenAICompatServer(tiny_lm, model_name="tiny", echo=False, top_logprobs=False, owned_by="library") as server:
        model = f"openai/tiny@{server.url}"
        argv = ["selfcorrect", "run", "--model", model, "--suite", "law", "--samples", "2", "--data-dir",
                str(tiny_data_dir), "--out", str(tmp_path / "runs"), *SMALL]
        assert main([*argv, "--scoring", "first_token"]) == 2
        err = capsys.readouterr().err
        assert "(ollama) cannot score answer options in mode 'first_token'" in err and "it supports: sampled" in err
        assert main(argv) == 0
        run_dir = _run_dir(capsys.readouterr().out)
    used = json.loads((run_dir / "metrics.json").read_text())["scoring"][model]
    assert used["mode"] == "sampled" and used["samples"] == 2 and used["temperature"] == 1.0
    assert all(r["scoring"] == "sampled" for r in _read_jsonl(run_dir / "records.jsonl"))


def test_cli_refuses_first_token_for_multi_token_options(tiny_lm_dir: Path, tiny_data_dir: Path, tmp_path: Path,
                                                         capsys):
    from overseer.cli.main import main

    # the tiny tokenizer splits " they" in two: Winogender cannot be read by its first token
    code = main(["selfcorrect", "run", "--model", str(tiny_lm_dir), "--suite", "winogender", "--scoring",
                 "first_token", "--data-dir", str(tiny_data_dir), "--out", str(tmp_path), *SMALL])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "winogender option ' they' is 2 tokens" in err and "use --scoring sampled or --scoring full" in err


def test_agreement_compares_each_mode_with_full_scoring(tiny_lm_dir: Path, tiny_data_dir: Path, tmp_path: Path,
                                                        capsys):
    from overseer.cli.main import main

    out_json = tmp_path / "agreement.json"
    code = main(["selfcorrect", "agreement", "--model", str(tiny_lm_dir), "--suite", "bbq", "--samples", "3",
                 "--top-logprobs", "400",
                 "--data-dir", str(tiny_data_dir), "--out", str(tmp_path / "runs"), "--json-out", str(out_json),
                 *SMALL])
    out = capsys.readouterr().out
    assert code == 0, out
    found = json.loads(out_json.read_text())
    assert set(found["runs"]) == {"full", "first_token", "sampled"}
    block = found["models"][str(tiny_lm_dir)]["bbq/q"]
    assert set(block["scores"]) == {"full", "first_token", "sampled"}
    assert {"s_amb", "s_dis"} <= set(block["scores"]["full"])
    # r and same-choice share recomputed from the runs' records
    full = {r["item_id"]: r for r in _read_jsonl(Path(found["runs"]["full"]) / "records.jsonl")}
    first = {r["item_id"]: r for r in _read_jsonl(Path(found["runs"]["first_token"]) / "records.jsonl")}
    import numpy as np

    def per_token(r):
        v = np.array([lp / n for lp, n in zip(r["option_logprobs"], r["option_tokens"], strict=True)])
        return np.exp(v - v.max()) / np.exp(v - v.max()).sum()

    a = np.concatenate([per_token(full[k]) for k in sorted(full)])
    b = np.concatenate([first[k]["option_probs"] for k in sorted(full)])
    assert block["first_token"]["n_prompts"] == 2 and block["first_token"]["n_options"] == 6
    assert block["first_token"]["r_probs"] == pytest.approx(float(np.corrcoef(a, b)[0, 1]))
    same = np.mean([np.argmax(per_token(full[k])) == np.argmax(first[k]["option_probs"]) for k in sorted(full)])
    assert block["first_token"]["same_choice"] == pytest.approx(same)
    assert "agreement with full log-prob scoring" in out and "bbq/q" in out and "s_amb" in out
