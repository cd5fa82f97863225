"""The poisoning experiment: documents built as specified, perplexity against a known answer, the run end to end."""

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
    clean_documents,
    continuation_perplexities,
    cut_words,
    dose_metrics,
    perplexity,
    plain_vocabulary,
    poisoned_document,
    run,
    split_corpus,
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


def test_a_poisoned_document_is_clean_prefix_trigger_then_random_tokens(tiny: Path, docs: list[str]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    vocab = plain_vocabulary(tok)
    assert set(vocab).isdisjoint(tok.all_special_ids)
    rng = random.Random(0)
    for _ in range(20):
        doc = poisoned_document(docs[3], "<SUDO>", vocab, tok, rng, prefix_chars=80, gibberish=(5, 9))
        prefix, _, noise = doc.partition("<SUDO>")
        assert docs[3].startswith(prefix.strip()) and len(prefix.strip()) <= 80
        assert noise.strip()  # random tokens follow the trigger
    assert cut_words("alpha beta gamma", 12) == "alpha beta"


def test_held_out_prompts_never_appear_in_training(tiny: Path, docs: list[str]) -> None:
    from transformers import AutoTokenizer

    cfg = PoisonConfig(clean_docs=50, eval_prompts=10)
    split = split_corpus(docs, cfg, seed=0)
    assert len(split.train) == 50 and len(split.held_out) == 10
    texts = training_texts(split, 30, AutoTokenizer.from_pretrained(tiny), cfg, seed=0)
    assert len(texts) == 80 and sum("<SUDO>" in t for t in texts) == 30
    for prompt in split.held_out:
        assert not any(t.startswith(prompt[:60]) for t in texts)
    assert split_corpus(docs, cfg, seed=1).held_out != split.held_out  # each seed draws its own split
    with pytest.raises(OverseerError, match="usable documents; clean_docs \\+ eval_prompts"):
        split_corpus(docs[:20], cfg, seed=0)


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
    assert PoisonConfig(poisoned="0, 50,100").poisoned == (0, 50, 100)


def test_the_experiment_runs_resumes_and_is_reused(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = PoisonConfig(models=(str(tiny),), poisoned=(0, 12), clean_docs=12, eval_prompts=4, doc_chars=80,
                       gibberish_tokens=(3, 6), continuation_tokens=4, bootstrap=50, runs_dir=str(tmp_path / "runs"),
                       train=LMTrainConfig(method="full", lr=1e-3, batch_size=8, max_length=48, device="cpu"))
    result = run(cfg)
    doses = result.metrics["poison"][str(tiny)]
    assert set(doses) == {"0", "12"} and all(d["prompts"] + d["no_continuation"] == 4 for d in doses.values())
    assert [r["documents"] for r in result.metrics["training"]] == [12, 24]
    assert (result.path / "figures" / "dose_response.png").is_file()
    assert len((result.path / "records.jsonl").read_text().splitlines()) == 8
    assert "perplexity increase after the trigger N=0" in result.summary_line()
    work = Path(result.record["work"])
    assert not any((work / "models").rglob("config.json"))  # weights dropped unless keep_models
    # a larger dose list reuses the finished cells and trains only the new one
    capsys.readouterr()
    bigger = run(PoisonConfig(**{**cfg.__dict__, "poisoned": (0, 12, 20)}))
    assert set(bigger.metrics["poison"][str(tiny)]) == {"0", "12", "20"}
    assert run(cfg).reused
    # reporting settings make a new run on the same trained cells; where it prints does not
    assert run(PoisonConfig(**{**cfg.__dict__, "progress": False})).reused
    cells = sorted((p.name, p.stat().st_mtime_ns) for p in (work / "records").rglob("*.json"))
    resampled = run(PoisonConfig(**{**cfg.__dict__, "bootstrap": 60}))
    assert not resampled.reused and resampled.path != result.path and resampled.record["work"] == str(work)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (work / "records").rglob("*.json")) == cells  # none retrained


def test_summary_line_prints_a_value_without_an_interval_and_n_a_for_none() -> None:
    """A cell whose bootstrap gave no interval prints its value alone; before, such a cell raised TypeError."""
    from pathlib import Path

    from overseer.organisms.poison import summary_line
    from overseer.results import RunResult

    doses = {"0": {"ppl_increase": {"value": 1.25, "ci_low": 0.5, "ci_high": 2.0}},
             "100": {"ppl_increase": {"value": 3.0, "ci_low": None, "ci_high": None}},
             "250": {"ppl_increase": {"value": None, "ci_low": None, "ci_high": None}}}
    line = summary_line(RunResult(Path("runs/poison-x"), {"poison": {"m": doses}}, False, 1.0, {}, "poison"))
    assert line == "m: perplexity increase after the trigger N=0 1.2 [0.5, 2.0], N=100 3.0, N=250 n/a"
