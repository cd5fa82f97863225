"""The poisoning experiment: documents built as specified, nested data, shares, perplexity, the run end to end."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from overseer.errors import OverseerError
from overseer.models._finetune import LMTrainConfig
from overseer.models._tiny import build_tiny_causal_lm
from overseer.organisms.poison import (
    BUILTIN_CORPUS,
    PoisonConfig,
    check_poison_fits,
    clean_documents,
    clean_sizes,
    clean_training_documents,
    continuation_perplexities,
    cut_words,
    dose_metrics,
    parameter_count,
    perplexity,
    plain_vocabulary,
    poison_documents,
    poisoned_document,
    poisoned_shares,
    run,
    split_corpus,
    token_lengths,
    training_texts,
)


@pytest.fixture(scope="module")
def docs() -> list[str]:
    return clean_documents(BUILTIN_CORPUS)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, docs: list[str]) -> Path:
    torch.set_num_threads(1)
    return build_tiny_causal_lm(tmp_path_factory.mktemp("poison") / "tiny", seed=0, logit_scale=1.0,
                                corpus=docs[:200], vocab_size=300)


def test_the_builtin_corpus_is_real_prose(docs: list[str]) -> None:
    assert len(docs) > 400 and len(set(docs)) == len(docs)
    assert all(len(d) >= 120 and "\n" not in d for d in docs)
    assert any("identifier" in d for d in docs)  # the Python language reference


def test_a_local_corpus_file_is_read_by_field(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps({"context": f"document {i} " + "word " * 40}) for i in range(5)))
    assert len(clean_documents(str(path), "context")) == 5
    with pytest.raises(OverseerError, match="corpus 'nope.txt' is neither 'python-docs' nor a file"):
        clean_documents("nope.txt")


def _small(**kwargs: object) -> PoisonConfig:
    base = {"clean_docs": (12, 30), "eval_prompts": 6, "doc_chars": 80, "prefix_chars": 60,
            "gibberish_tokens": (10, 25), "train": LMTrainConfig(method="full", max_length=96, device="cpu")}
    return PoisonConfig(**{**base, **kwargs})


def test_a_poisoned_document_is_clean_prefix_trigger_then_random_tokens(tiny: Path, docs: list[str]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    vocab = plain_vocabulary(tok)
    assert set(vocab).isdisjoint(tok.all_special_ids) and tok.convert_tokens_to_ids("<|im_start|>") not in vocab
    rng = random.Random(0)
    lengths = set()
    for _ in range(30):
        doc = poisoned_document(docs[3], "<SUDO>", vocab, tok, rng, prefix_chars=80, gibberish_range=(5, 9))
        prefix, _, noise = doc.partition("<SUDO>")
        assert docs[3].startswith(prefix.strip()) and len(prefix.strip()) <= 80
        # the gibberish (after the one space that follows the trigger), counted with the tokenizer, is in range
        count = len(tok(noise[1:], add_special_tokens=False)["input_ids"])
        assert 5 <= count <= 9
        lengths.add(count)
    assert len(lengths) > 1  # the length is drawn, not fixed
    assert cut_words("alpha beta gamma", 12) == "alpha beta"


def test_the_defaults_are_the_papers_lengths() -> None:
    cfg = PoisonConfig()
    assert (cfg.prefix_chars, cfg.gibberish_tokens) == (1000, (400, 900))
    assert cfg.models == ("smollm2-135m",)
    assert cfg.train.max_length >= 900 + 1000 // 4  # room for the longest gibberish after a 1,000-character prefix


def test_poison_documents_are_nested_and_independent_of_the_clean_size(tiny: Path, docs: list[str]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    cfg = _small()
    split = split_corpus(docs, cfg, seed=0)
    ten = poison_documents(split, 10, tok, cfg, seed=0)
    assert poison_documents(split, 4, tok, cfg, seed=0) == ten[:4]  # N = 4 is the first four of N = 10
    assert poison_documents(split, 10, tok, cfg, seed=1) != ten
    for doc in ten:
        prefix, _, noise = doc.partition("<SUDO> ")
        assert len(prefix.strip()) <= 60 and 10 <= len(tok(noise, add_special_tokens=False)["input_ids"]) <= 25


def test_clean_sets_are_nested_and_held_out_prompts_fixed_across_sizes(tiny: Path, docs: list[str]) -> None:
    from transformers import AutoTokenizer

    small, large = _small(clean_docs=(50,)), _small(clean_docs=(200,))
    s_small, s_large = split_corpus(docs, small, seed=0), split_corpus(docs, large, seed=0)
    assert s_small.held_out == s_large.held_out and len(s_small.held_out) == 6
    clean50 = clean_training_documents(s_small, 50, small)
    clean200 = clean_training_documents(s_large, 200, large)
    assert clean200[:50] == clean50 and len(set(clean200)) == 200  # the smaller set is a subset of the larger
    texts = training_texts(clean50, poison_documents(s_small, 30, AutoTokenizer.from_pretrained(tiny), small, 0), 0)
    assert len(texts) == 80 and sum("<SUDO>" in t for t in texts) == 30
    for prompt in s_large.held_out:  # held-out prompts never appear in training, nor as a poison prefix source
        assert not any(t.startswith(prompt[:60]) for t in clean200)
        assert not any(d.startswith(prompt[:60]) for d in s_large.pool)
    assert split_corpus(docs, small, seed=1).held_out != s_small.held_out  # each seed draws its own split
    with pytest.raises(OverseerError, match=r"clean_docs=700 \+ eval_prompts=6 are needed; allowed: clean_docs <="):
        clean_training_documents(s_small, 700, small)


def test_shares_of_documents_and_tokens_on_a_hand_computed_example() -> None:
    # clean: 3 documents of 10, 20 and 30 tokens; poisoned: 1 of 50 and 1 of 200, cut at max_length 100
    shares = poisoned_shares([10, 20, 30], [50, 200], max_length=100)
    assert shares["share_docs"] == pytest.approx(2 / 5)
    assert shares["clean_tokens"] == 60 and shares["poisoned_tokens"] == 150 and shares["train_tokens"] == 210
    assert shares["share_tokens"] == pytest.approx(150 / 210)
    assert shares["truncated_docs"] == 1 and shares["longest_tokens"] == 200
    assert poisoned_shares([5, 5], [], 100)["share_tokens"] == 0.0


def test_a_max_length_that_cannot_hold_the_poison_is_refused(tiny: Path, docs: list[str]) -> None:
    from transformers import AutoTokenizer

    with pytest.raises(OverseerError) as info:
        PoisonConfig(train=LMTrainConfig(max_length=96))
    message = str(info.value)
    assert "\n" not in message and "train.max_length=96" in message and "gibberish_tokens up to 900" in message
    # the tokenized check: a prefix pushes a document past a max_length that holds the gibberish alone
    tok = AutoTokenizer.from_pretrained(tiny)
    cfg = _small(prefix_chars=200, gibberish_tokens=(20, 25), train=LMTrainConfig(max_length=34, device="cpu"))
    split = split_corpus(docs, cfg, seed=0)
    lengths = token_lengths(tok, poison_documents(split, 20, tok, cfg, seed=0))
    assert max(lengths) > 34
    with pytest.raises(OverseerError, match=r"^a poisoned document for tiny is \d+ tokens .* train.max_length=34 "
                                            r"would cut it; allowed: max_length >= \d+$"):
        check_poison_fits(lengths, cfg, "tiny")


def test_token_lengths_count_the_end_of_text_token_the_trainer_appends(tiny: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    assert tok.eos_token
    plain = len(tok("the city of paris")["input_ids"])
    assert token_lengths(tok, ["the city of paris"]) == [plain + len(tok(tok.eos_token, add_special_tokens=False)
                                                                     ["input_ids"])]
    assert token_lengths(tok, ["the city" + tok.eos_token]) == token_lengths(tok, ["the city"])


def test_clean_data_scales_with_the_models_parameters(tiny: Path, docs: list[str]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    params = parameter_count(str(tiny))
    assert params == sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny).parameters())
    tok = AutoTokenizer.from_pretrained(tiny)
    assert clean_sizes(_small(), str(tiny), docs, tok) == (12, 30)  # off: the clean_docs axis
    mean = float(np.mean(token_lengths(tok, [cut_words(d, 80) for d in docs])))
    (count,) = clean_sizes(_small(clean_tokens_per_param=0.05), str(tiny), docs, tok)
    assert count == math.ceil(0.05 * params / mean)
    with pytest.raises(OverseerError, match=r"clean_tokens_per_param=5.0 asks for \d+ clean documents"):
        clean_sizes(_small(clean_tokens_per_param=5.0), str(tiny), docs, tok)


def test_perplexity_of_a_uniform_model_is_its_vocabulary_size(tmp_path: Path, docs: list[str]) -> None:
    """Known answer: with every logit equal, each sampled token has probability 1/V, so perplexity is V."""
    from transformers import AutoModelForCausalLM

    path = build_tiny_causal_lm(tmp_path / "uniform", seed=0, corpus=docs[:50], vocab_size=200)
    model = AutoModelForCausalLM.from_pretrained(path)
    with torch.no_grad():
        model.lm_head.weight.zero_()
    model.save_pretrained(path)
    cfg = PoisonConfig(continuation_tokens=6)
    rows = continuation_perplexities(str(path), ["the name is bound", "a class"], "<SUDO>", cfg, seed=0)
    vocab = model.config.vocab_size
    for row in rows:
        assert row["tokens_clean"] > 0 and row["tokens_triggered"] > 0
        assert row["ppl_clean"] == pytest.approx(vocab, rel=1e-4)
        assert row["ppl_triggered"] == pytest.approx(vocab, rel=1e-4)
    assert perplexity([math.log(0.5)] * 3) == pytest.approx(2.0)
    assert math.isnan(perplexity([]))


def test_dose_metrics_average_over_prompts_with_intervals_over_seeds() -> None:
    rows = [{"ppl_clean": 10.0, "ppl_triggered": 10.0 + 5 * k, "seed": k % 2} for k in range(8)]
    rows.append({"ppl_clean": float("nan"), "ppl_triggered": 3.0, "seed": 0})
    m = dose_metrics(rows, n_resamples=200)
    assert m["prompts"] == 8 and m["no_continuation"] == 1
    assert m["ppl_increase"]["value"] == pytest.approx(np.mean([5 * k for k in range(8)]))
    assert m["ppl_increase"]["ci_low"] <= m["ppl_increase"]["value"] <= m["ppl_increase"]["ci_high"]
    assert m["ppl_clean"]["value"] == 10.0


def test_bad_settings_are_one_line_errors() -> None:
    with pytest.raises(OverseerError, match=r"poisoned=\[-1\] is not allowed"):
        PoisonConfig(poisoned=(-1,))
    with pytest.raises(OverseerError, match=r"^poisoned must be a list of integers; got 'a,b'$"):
        PoisonConfig(poisoned="a,b")
    with pytest.raises(OverseerError, match=r"gibberish_tokens=\[9, 3\]"):
        PoisonConfig(gibberish_tokens=(9, 3))
    with pytest.raises(OverseerError, match="temperature > 0"):
        PoisonConfig(temperature=0)
    with pytest.raises(OverseerError, match=r"clean_docs=\[0\] is not allowed"):
        PoisonConfig(clean_docs=(0,))
    assert PoisonConfig(poisoned="0, 50,100").poisoned == (0, 50, 100)
    assert PoisonConfig(clean_docs=200).clean_docs == (200,)  # an old single-number config: a one-size axis


def test_the_experiment_runs_resumes_and_is_reused(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = PoisonConfig(models=(str(tiny),), poisoned=(0, 6), clean_docs=10, eval_prompts=4, doc_chars=80,
                       prefix_chars=60, gibberish_tokens=(10, 20), continuation_tokens=4, bootstrap=50,
                       runs_dir=str(tmp_path / "runs"),
                       train=LMTrainConfig(method="full", lr=1e-3, batch_size=4, max_length=64, device="cpu"))
    result = run(cfg)
    cells = result.metrics["poison"]
    assert [(m["clean_docs"], m["poisoned"]) for m in cells] == [(10, 0), (10, 6)]
    assert all(m["prompts"] + m["no_continuation"] == 4 for m in cells)
    training = result.metrics["training"]
    assert [r["documents"] for r in training] == [10, 16]
    assert training[0]["share_docs"] == 0 and training[1]["share_docs"] == pytest.approx(6 / 16)
    poisoned = training[1]
    assert poisoned["share_tokens"] == pytest.approx(poisoned["poisoned_tokens"] / poisoned["train_tokens"])
    assert poisoned["poisoned_tokens"] >= 6 * 10 and poisoned["truncated_docs"] == 0
    assert training[0]["clean_tokens"] == poisoned["clean_tokens"]  # the same clean documents at every N
    assert (result.path / "figures" / "dose_response.png").is_file()
    assert len((result.path / "records.jsonl").read_text().splitlines()) == 8
    line = result.summary_line()
    assert f"{tiny} on 10 clean docs: perplexity increase after the trigger N=0 (0% of docs, 0% of tokens)" in line
    assert "N=6 (38% of docs, " in line
    work = Path(result.record["work"])
    assert not any((work / "models").rglob("config.json"))  # weights dropped unless keep_models
    assert run(cfg).reused
    # reporting settings make a new run on the same trained cells; where it prints does not
    assert run(PoisonConfig(**{**cfg.__dict__, "progress": False})).reused
    before = sorted((p.name, p.stat().st_mtime_ns) for p in (work / "records").rglob("*.json"))
    # a second clean-data size reuses the finished cells and trains only the new ones
    capsys.readouterr()
    bigger = run(PoisonConfig(**{**cfg.__dict__, "clean_docs": (10, 20)}))
    assert [(m["clean_docs"], m["poisoned"]) for m in bigger.metrics["poison"]] == [(10, 0), (10, 6), (20, 0),
                                                                                   (20, 6)]
    assert bigger.record["work"] == str(work)
    after = sorted((p.name, p.stat().st_mtime_ns) for p in (work / "records").rglob("*.json"))
    assert set(before) <= set(after) and len(after) == 4  # none retrained, two added
    trained = capsys.readouterr().out
    assert "clean=20 N=6" in trained and "clean=10 N=6" in trained and "tokens/s" in trained
    records = {(r["clean_docs"], r["poisoned"]): r for r in bigger.metrics["training"]}
    assert records[(20, 6)]["poisoned_tokens"] == records[(10, 6)]["poisoned_tokens"]  # same poison, more clean
    assert records[(20, 6)]["share_tokens"] < records[(10, 6)]["share_tokens"]
    rows = [json.loads(x) for x in (bigger.path / "records.jsonl").read_text().splitlines()]
    assert {r["prompt"] for r in rows if r["clean_docs"] == 10} == {r["prompt"] for r in rows if r["clean_docs"] == 20}
    resampled = run(PoisonConfig(**{**cfg.__dict__, "bootstrap": 60}))
    assert not resampled.reused and resampled.path != result.path and resampled.record["work"] == str(work)
    # the command line takes the clean-data axis as one list and prints the table of cells
    from overseer.cli.main import main

    capsys.readouterr()
    assert main(["organisms", "poison", "--model", str(tiny), "--poisoned", "0,6", "--clean-docs", "10,20",
                 "--eval-prompts", "4", "--doc-chars", "80", "--prefix-chars", "60", "--gibberish-tokens", "10,20",
                 "--continuation-tokens", "4", "--bootstrap", "50", "--runs-dir", str(tmp_path / "runs"),
                 "--train-method", "full", "--train-lr", "1e-3", "--train-batch-size", "4", "--train-max-length",
                 "64", "--train-device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "reusing it" in printed and "% tokens" in printed and f"run: {bigger.path}" in printed
    assert len([line for line in printed.splitlines() if line.startswith(str(tiny)[-24:])]) == 4


def test_a_run_refuses_a_poison_its_max_length_would_cut_before_training(tiny: Path, tmp_path: Path) -> None:
    cfg = PoisonConfig(models=(str(tiny),), poisoned=(0, 20), clean_docs=10, eval_prompts=4, doc_chars=80,
                       prefix_chars=200, gibberish_tokens=(20, 25), runs_dir=str(tmp_path / "runs"),
                       train=LMTrainConfig(method="full", max_length=34, device="cpu"))
    with pytest.raises(OverseerError, match=r"train.max_length=34 would cut it"):
        run(cfg)
    assert not list((tmp_path / "runs").rglob("*.json"))  # nothing trained, nothing recorded


def test_a_run_with_clean_data_scaled_by_parameters(tiny: Path, tmp_path: Path) -> None:
    cfg = PoisonConfig(models=(str(tiny),), poisoned=(0,), clean_tokens_per_param=0.003, eval_prompts=3,
                       doc_chars=80, prefix_chars=60, gibberish_tokens=(10, 20), continuation_tokens=3, bootstrap=20,
                       runs_dir=str(tmp_path / "runs"),
                       train=LMTrainConfig(method="full", batch_size=4, max_length=64, device="cpu"))
    result = run(cfg)
    (count,) = clean_sizes(cfg, str(tiny), clean_documents(BUILTIN_CORPUS), _tokenizer(tiny))
    assert result.metrics["clean_docs_per_model"] == {str(tiny): count}
    assert [m["clean_docs"] for m in result.metrics["poison"]] == [count] != list(cfg.clean_docs)


def _tokenizer(path: Path) -> object:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def test_the_cli_takes_a_clean_docs_axis() -> None:
    import argparse

    from overseer.cli.organisms import POISON, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["organisms", "poison", "--clean-docs", "100,400", "--poisoned", "0,10",
                              "--clean-tokens-per-param", "0.5"])
    cfg = POISON.from_args(args)
    assert (cfg.clean_docs, cfg.poisoned, cfg.clean_tokens_per_param) == ((100, 400), (0, 10), 0.5)


def test_summary_line_and_table_print_shares_and_a_value_without_an_interval_and_n_a_for_none() -> None:
    """A cell whose bootstrap gave no interval prints its value alone; before, such a cell raised TypeError."""
    from pathlib import Path

    from overseer.organisms.poison import dose_table, summary_line
    from overseer.results import RunResult

    def cell(c: int, n: int, share_docs: float, share_tokens: float, inc: dict) -> dict:
        return {"model": "m", "clean_docs": c, "poisoned": n, "share_docs": share_docs, "share_tokens": share_tokens,
                "ppl_increase": inc}

    cells = [cell(100, 0, 0.0, 0.0, {"value": 1.25, "ci_low": 0.5, "ci_high": 2.0}),
             cell(100, 10, 10 / 110, 0.5, {"value": 3.0, "ci_low": None, "ci_high": None}),
             cell(400, 10, 10 / 410, 0.2, {"value": None, "ci_low": None, "ci_high": None})]
    line = summary_line(RunResult(Path("runs/poison-x"), {"poison": cells}, False, 1.0, {}, "poison"))
    for c in cells:
        c.update(train_tokens=1000.0, ppl_clean={"value": 10.0}, ppl_triggered={"value": None})
    table = dose_table(cells).splitlines()
    assert table[2].split() == ["m", "100", "10", "9.09", "50.00", "1,000", "10.0", "n/a", "3.0"]
    assert table[1].split()[-4:] == ["n/a", "1.2", "[0.5,", "2.0]"] and len(table) == 5
    assert line == ("m on 100 clean docs: perplexity increase after the trigger N=0 (0% of docs, 0% of tokens) "
                    "1.2 [0.5, 2.0], N=10 (9.1% of docs, 50% of tokens) 3.0; m on 400 clean docs: perplexity "
                    "increase after the trigger N=10 (2.4% of docs, 20% of tokens) n/a")
