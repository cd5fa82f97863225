"""GSM8K: final answers parsed from '#### N', calculator annotations, bad records, and the shared files."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

import overseer.data.gsm8k as gsm8k_module
from overseer.data import load_samples
from overseer.data.gsm8k import (
    GSM8K_REPO,
    GSM8K_REVISION,
    extract_answer,
    final_answer,
    gsm8k,
    normalize_number,
    strip_calculator,
)
from overseer.errors import OverseerError

RECORDS = [
    {
        "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
        "How many clips did Natalia sell altogether in April and May?",
        "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
        "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
    },
    {"question": "A farm makes $1,000 a week. How much in 1,250 weeks?", "answer": "1000*1250=<<1000*1250=1250000>>"
     "1,250,000\n#### 1,250,000"},
    {"question": "It is 7 degrees and drops 10. What now?", "answer": "7-10=<<7-10=-3>>-3\n#### -3"},
    {"question": "Half of 5?", "answer": "5/2=<<5/2=2.5>>2.5\n#### 2.5"},
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# --- parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [("72", "72"), ("1,000", "1000"), ("1,250,000", "1250000"), ("-3", "-3"), ("2.5", "2.5"), (" 18 \n", "18"),
     ("$5", "5"), ("2.50", "2.5"), ("007", "7"), ("-0", "0"), ("3.", "3"), ("18 apples", None), ("", None),
     ("1/2", None), ("--3", None)],
)
def test_normalize_number(text, number):
    assert normalize_number(text) == number


def test_final_answer_of_reference_solutions():
    assert [final_answer(r["answer"]) for r in RECORDS] == ["72", "1250000", "-3", "2.5"]
    assert final_answer("So it is 5.") is None  # no marker
    assert final_answer("#### five") is None
    assert final_answer("#### 3\n... #### 4") == "4"  # the last marker counts


def test_calculator_annotations_are_stripped_exactly():
    assert strip_calculator(RECORDS[0]["answer"]) == (
        "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\n#### 72"
    )
    assert strip_calculator("no annotations") == "no annotations"


@pytest.mark.parametrize(
    ("output", "answer"),
    [
        ("Natalia sold 72 clips.\n#### 72", "72"),
        ("#### $1,250,000.", "1250000"),
        ("The answer is 1,000.", "1000"),
        ("It ends at -3 degrees.", "-3"),
        ("7 - 10 = -3", "-3"),
        ("Half is 2.50 dollars", "2.5"),
        ("In 2 days she earns 40, so in 5 days 100", "100"),
        ("#### 18\nThen I kept talking about 3 ducks.", "18"),
        ("Step 1, 2, 3: the answer is 6", "6"),
        ("I cannot tell.", None),
        ("version v2", None),
    ],
)
def test_extract_answer_from_model_text(output, answer):
    assert extract_answer(output) == answer


def test_doctests_pass():
    result = doctest.testmod(gsm8k_module)
    assert result.attempted >= 10 and result.failed == 0


# --- the loader on hand-written files -------------------------------------------------------------


def test_loader_targets_and_solutions(tmp_path):
    path = write_jsonl(tmp_path / "test.jsonl", RECORDS)
    ds = gsm8k(path=path)
    assert ds.name == "gsm8k" and [s.id for s in ds] == ["test-0", "test-1", "test-2", "test-3"]
    assert [s.target for s in ds] == ["72", "1250000", "-3", "2.5"]
    assert ds[0].input == RECORDS[0]["question"] and ds[0].metadata["solution"] == RECORDS[0]["answer"]
    plain = gsm8k(path=path, calculator=False)
    assert plain[0].metadata["solution"] == strip_calculator(RECORDS[0]["answer"])
    assert not any("<<" in s.metadata["solution"] for s in plain)
    assert [s.target for s in plain] == [s.target for s in ds]


def test_unparseable_answers_are_counted_with_two_examples(tmp_path):
    bad = [
        {"question": "q1", "answer": "no marker at all"},
        {"question": "q2", "answer": "words\n#### seven"},
        {"question": "q3", "answer": "x\n#### 3 apples"},
    ]
    path = write_jsonl(tmp_path / "test.jsonl", RECORDS[:2] + bad)
    with pytest.raises(OverseerError) as err:
        gsm8k(path=path)
    msg = str(err.value)
    assert "\n" not in msg and "3 of 5 records" in msg and "skip_invalid=True" in msg
    assert "'test-2'" in msg and "'test-3'" in msg and "'test-4'" not in msg
    kept = gsm8k(path=path, skip_invalid=True)
    assert [s.id for s in kept] == ["test-0", "test-1"] and kept.meta["skipped"].startswith("3 records")


def test_folders_hub_clones_limit_and_shuffle(tmp_path):
    source_clone = tmp_path / "grade-school-math" / "grade_school_math" / "data"
    write_jsonl(source_clone / "test.jsonl", RECORDS)
    write_jsonl(source_clone / "test_socratic.jsonl", RECORDS[:1])
    write_jsonl(source_clone / "train.jsonl", RECORDS[:2])
    ds = gsm8k(path=tmp_path / "grade-school-math")
    assert len(ds) == 4 and ds[3].id == "test-3"
    assert len(gsm8k(path=tmp_path / "grade-school-math", split="train")) == 2

    import pyarrow as pa
    import pyarrow.parquet as pq

    hub_clone = tmp_path / "gsm8k-hub"
    for config, rows in (("main", RECORDS), ("socratic", RECORDS[:1])):
        (hub_clone / config).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), hub_clone / config / "test-00000-of-00001.parquet")
    from_hub_clone = gsm8k(path=hub_clone)
    assert from_hub_clone.fingerprint() == ds.fingerprint()  # same records, same ids, wherever they come from
    assert len(gsm8k(path=hub_clone, config="socratic")) == 1

    picked = gsm8k(path=hub_clone, limit=2, shuffle=True, seed=1)
    assert len(picked) == 2 and picked == gsm8k(path=hub_clone, limit=2, shuffle=True, seed=1)
    assert [s.id for s in gsm8k(path=hub_clone, limit=2)] == ["test-0", "test-1"]


def test_arguments_are_checked(tmp_path):
    with pytest.raises(OverseerError, match="unknown split 'validation'; allowed: train, test"):
        gsm8k(path=tmp_path, split="validation")
    with pytest.raises(OverseerError, match="unknown config 'x'; allowed: main, socratic"):
        gsm8k(path=tmp_path, config="x")
    with pytest.raises(OverseerError, match="limit must be a positive integer"):
        gsm8k(path=tmp_path, limit=-1)


def test_the_hub_is_read_at_the_pinned_revision(monkeypatch):
    import datasets

    calls = []

    def load(repo, name=None, *, revision=None, split=None, data_dir=None):
        calls.append((repo, name, revision, split))
        return datasets.Dataset.from_list(RECORDS)

    monkeypatch.setattr(datasets, "load_dataset", load)
    ds = load_samples("gsm8k", split="train", limit=2)
    assert calls == [(GSM8K_REPO, "main", GSM8K_REVISION, "train")]
    assert len(GSM8K_REVISION) == 40 and int(GSM8K_REVISION, 16) >= 0
    assert [s.id for s in ds] == ["train-0", "train-1"] and ds.source.startswith(f"hf://datasets/openai/gsm8k@{GSM8K_REVISION}")


# --- the shared copy of the source repository -----------------------------------------------------


def test_every_shared_record_parses(shared_data_dir: Path):
    data = shared_data_dir / "gsm8k"
    test = gsm8k(path=data, split="test")
    assert len(test) == 1319 and not test.meta
    first = test[0]
    assert first.id == "test-0" and first.target == "18" and first.input.startswith("Janet’s ducks lay 16 eggs")
    assert first.metadata["solution"].endswith("#### 18") and "<<9*2=18>>" in first.metadata["solution"]
    assert "-3" in {s.target for s in test} and all("," not in s.target for s in test)
    assert all(extract_answer(s.metadata["solution"]) == s.target for s in test)
    stripped = gsm8k(path=data / "test.jsonl", calculator=False)
    assert stripped.fingerprint() != test.fingerprint() and not any("<<" in s.metadata["solution"] for s in stripped)
    assert len(gsm8k(path=data, split="train")) == 7473
