"""The weak-to-strong paper's dataset loaders, fed local copies; the hub path without network."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from overseer.data import dataset_info, load_dataset
from overseer.data.hub import HUB_SOURCES, NONE_OF_THE_ABOVE
from overseer.errors import OverseerError

PAPER_DATASETS = ["sciq", "boolq", "amazon_polarity", "cosmos_qa", "anthropic_hh"]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# Tests that take ``cosmos`` or ``hh`` read the shared files (and are skipped where they are absent).


@pytest.fixture(scope="module")
def cosmos(shared_data_dir: Path) -> Path:
    return shared_data_dir / "cosmos_qa" / "valid.csv"


@pytest.fixture(scope="module")
def hh(shared_data_dir: Path) -> Path:
    return shared_data_dir / "hh_rlhf" / "harmless-base-test.jsonl.gz"


@pytest.fixture(scope="module")
def cosmos_rows(cosmos: Path) -> dict[str, dict]:
    with cosmos.open(encoding="utf-8", newline="") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


# --- cosmos_qa ----------------------------------------------------------------------------------


def test_cosmos_from_the_shared_csv(cosmos, cosmos_rows):
    ds = load_dataset("cosmos_qa", path=cosmos)
    kept = [r for r in cosmos_rows.values() if r[f"answer{r['label']}"] != NONE_OF_THE_ABOVE]
    assert len(kept) == 2726  # 259 of 2,985 have "None of the above choices ." as the right answer
    assert len(ds) == 2726 and ds.pairing == "concat"
    assert Counter(ds.labels()) == {1: 1363, 0: 1363}
    assert [ex.id for ex in ds.examples] == [r["id"] for r in kept]
    assert ds.meta["dropped"].startswith("259 ")
    for ex in ds.examples:
        row = cosmos_rows[ex.id]
        assert ex.text == f"Context: {row['context']}\nQuestion: {row['question']}"
        answer = ex.text_pair.removeprefix("Answer: ")
        answers = [row[f"answer{k}"] for k in range(4)]
        assert answer in answers and answer != NONE_OF_THE_ABOVE
        assert ex.label == int(answers.index(answer) == int(row["label"]))


def test_cosmos_groups_follow_the_context(cosmos, cosmos_rows):
    ds = load_dataset("cosmos_qa", path=cosmos)
    contexts_of_group = defaultdict(set)
    groups_of_context = defaultdict(set)
    for ex in ds.examples:
        context = cosmos_rows[ex.id]["context"]
        contexts_of_group[ex.group].add(context)
        groups_of_context[context].add(ex.group)
    assert all(len(v) == 1 for v in contexts_of_group.values())
    assert all(len(v) == 1 for v in groups_of_context.values())
    assert len(groups_of_context) < len(ds)  # several questions share a context here


def test_cosmos_is_deterministic_under_a_seed(cosmos):
    a, b, c = (load_dataset("cosmos_qa", path=cosmos, seed=s) for s in (0, 0, 1))
    assert a.examples == b.examples and a.fingerprint() == b.fingerprint()
    assert a.labels() != c.labels() and Counter(c.labels()) == {1: 1363, 0: 1363}
    assert [ex.id for ex in a.examples] == [ex.id for ex in c.examples]


def test_cosmos_limit_and_split_checks(cosmos):
    ds = load_dataset("cosmos_qa", path=cosmos, limit=10)
    assert len(ds) == 10 and sum(ds.labels()) == 5
    with pytest.raises(OverseerError, match=r"unknown split 'test'; allowed: train, validation"):
        load_dataset("cosmos_qa", path=cosmos, split="test")


def test_cosmos_from_a_clone_of_the_source_repo(tmp_path, cosmos):
    # wilburOne/cosmosqa keeps data/train.csv, data/valid.csv, data/test.jsonl
    data = tmp_path / "cosmosqa" / "data"
    data.mkdir(parents=True)
    (data / "valid.csv").symlink_to(cosmos)
    (data / "train.csv").write_text(
        cosmos.read_text(encoding="utf-8").split("\n", 1)[0] + "\n", encoding="utf-8"
    )
    assert len(load_dataset("cosmos_qa", path=tmp_path / "cosmosqa", split="validation")) == 2726
    with pytest.raises(OverseerError, match=r"train\.csv' holds no records"):
        load_dataset("cosmos_qa", path=tmp_path / "cosmosqa", split="train")


def test_cosmos_bad_label_is_named(tmp_path):
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {
                "id": "x",
                "context": "c",
                "question": "q",
                **{f"answer{k}": f"a{k}" for k in range(4)},
                "label": -1,
            }
        ],
    )
    with pytest.raises(OverseerError, match=r"label -1 is not an answer index; allowed: 0, 1, 2, 3"):
        load_dataset("cosmos_qa", path=path)


# --- anthropic_hh -------------------------------------------------------------------------------


def test_hh_from_the_shared_file_is_a_balanced_comparison(hh):
    with gzip.open(hh, "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    ds = load_dataset("anthropic_hh", path=hh)
    assert ds.pairing == "compare" and len(ds) == len(records) == 2312
    assert Counter(ds.labels()) == {1: 1156, 0: 1156}
    for ex, rec in zip(ds.examples, records, strict=True):
        chosen, rejected = rec["chosen"].strip(), rec["rejected"].strip()
        assert (ex.text, ex.text_pair) == ((chosen, rejected) if ex.label else (rejected, chosen))
        assert ex.text.startswith("Human:")
    # same prompt (dialogue before the last assistant turn) <=> same group
    by_group = defaultdict(set)
    for ex, rec in zip(ds.examples, records, strict=True):
        by_group[ex.group].add(rec["chosen"][: rec["chosen"].rfind("\n\nAssistant:")])
    assert all(len(prompts) == 1 for prompts in by_group.values())
    assert len(by_group) == 2310
    assert ds.examples[0].id == "harmless-base-test-0"


def test_hh_is_seeded(hh):
    a, b, c = (load_dataset("anthropic_hh", path=hh, seed=s, limit=200) for s in (3, 3, 4))
    assert a.examples == b.examples
    assert a.labels() != c.labels()
    assert sum(a.labels()) == sum(c.labels()) == 100


def test_hh_from_a_clone_with_subsets(tmp_path, hh):
    # anthropics/hh-rlhf keeps <subset>/{train,test}.jsonl.gz; the red-team folder is another format
    clone = tmp_path / "hh-rlhf"
    (clone / "harmless-base").mkdir(parents=True)
    (clone / "harmless-base" / "test.jsonl.gz").symlink_to(hh)
    pair = {
        "chosen": "\n\nHuman: hi\n\nAssistant: Hello!",
        "rejected": "\n\nHuman: hi\n\nAssistant: Go away.",
    }
    write_jsonl(clone / "helpful-base" / "test.jsonl", [pair] * 3)
    write_jsonl(clone / "red-team-attempts" / "red_team_attempts.jsonl", [{"transcript": "..."}])
    write_jsonl(clone / ".git" / "test.jsonl", [{"junk": 1}])
    both = load_dataset("anthropic_hh", path=clone, split="test")
    assert len(both) == 2315
    assert both.examples[0].id == "harmless-base/test-0" and both.examples[-1].id == "helpful-base/test-2"
    helpful = load_dataset("anthropic_hh", path=clone, split="test", subset="helpful-base")
    assert len(helpful) == 3 and len({ex.group for ex in helpful.examples}) == 1
    with pytest.raises(
        OverseerError, match=r"no subset 'helpful-online' .* found: harmless-base, helpful-base"
    ):
        load_dataset("anthropic_hh", path=clone, split="test", subset="helpful-online")
    with pytest.raises(OverseerError, match=r"no 'train' data file under"):
        load_dataset("anthropic_hh", path=clone, split="train")


def test_hh_drops_identical_pairs(tmp_path):
    same = {"chosen": "Human: a\n\nAssistant: b", "rejected": "Human: a\n\nAssistant: b"}
    diff = {"chosen": "Human: a\n\nAssistant: b", "rejected": "Human: a\n\nAssistant: c"}
    ds = load_dataset("anthropic_hh", path=write_jsonl(tmp_path / "t.jsonl", [same, diff, diff]))
    assert len(ds) == 2 and ds.meta["dropped"].startswith("1 ")


# --- sciq, boolq, amazon_polarity from small hand-written files ----------------------------------

SCIQ = [
    {
        "question": f"Question {i}?",
        "distractor1": f"wrong {i}a",
        "distractor2": f"wrong {i}b",
        "distractor3": f"wrong {i}c",
        "correct_answer": f"right {i}",
        "support": "",
    }
    for i in range(20)
]


def test_sciq_correct_or_distractor_balanced(tmp_path):
    ds = load_dataset("sciq", path=write_jsonl(tmp_path / "sciq_train.jsonl", SCIQ), seed=7)
    assert len(ds) == 20 and ds.pairing == "concat"
    assert Counter(ds.labels()) == {1: 10, 0: 10}
    for i, ex in enumerate(ds.examples):
        assert ex.id == f"sciq_train-{i}"
        assert ex.text == f"Q: Question {i}?"
        expected = {f"A: right {i}"} if ex.label else {f"A: wrong {i}{s}" for s in "abc"}
        assert ex.text_pair in expected
    assert len({ex.group for ex in ds.examples}) == 20
    assert load_dataset("sciq", path=tmp_path / "sciq_train.jsonl", seed=7).examples == ds.examples
    # the three distractors are all used across seeds
    runs = [load_dataset("sciq", path=tmp_path / "sciq_train.jsonl", seed=s) for s in range(5)]
    shown = {ex.text_pair[-1] for run in runs for ex in run.examples if not ex.label}
    assert shown == {"a", "b", "c"}


def test_sciq_repeated_question_shares_a_group_and_distractors_equal_to_the_answer_are_skipped(tmp_path):
    rec = {
        "question": "Q?",
        "distractor1": "x",
        "distractor2": "x",
        "distractor3": "x",
        "correct_answer": "x",
    }
    path = write_jsonl(tmp_path / "s.jsonl", [SCIQ[0], SCIQ[0], rec])
    ds = load_dataset("sciq", path=path)
    assert len(ds) == 2 and ds.examples[0].group == ds.examples[1].group


def test_sciq_from_a_hub_clone_with_parquet_shards(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "data").mkdir()
    pq.write_table(pa.Table.from_pylist(SCIQ[:6]), tmp_path / "data" / "validation-00000-of-00001.parquet")
    pq.write_table(pa.Table.from_pylist(SCIQ), tmp_path / "data" / "train-00000-of-00001.parquet")
    ds = load_dataset("sciq", path=tmp_path, split="validation")
    assert len(ds) == 6 and ds.examples[0].id == "data/validation-00000-of-00001-0"
    assert len(load_dataset("sciq", path=tmp_path, split="train", limit=8)) == 8


def test_sciq_missing_field_is_named(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [{"question": "Q?", "answer": "x"}])
    with pytest.raises(
        OverseerError, match=r"has no field 'correct_answer'; fields present: 'question', 'answer'"
    ):
        load_dataset("sciq", path=path)


BOOLQ = [
    {"question": "is the sky blue", "answer": True, "passage": "The sky is blue."},
    {"question": "is the sky green", "answer": False, "passage": "The sky is blue."},
    {"question": "do fish fly", "answer": "false", "passage": "Fish swim.", "title": "Fish"},
]


def test_boolq_passage_question_bool_answer(tmp_path):
    # the source release names its validation split dev.jsonl
    write_jsonl(tmp_path / "boolq" / "dev.jsonl", BOOLQ)
    ds = load_dataset("boolq", path=tmp_path / "boolq", split="validation")
    assert ds.labels() == [1, 0, 0] and ds.pairing == "concat"
    assert ds.examples[0].text == "Passage: The sky is blue."
    assert ds.examples[0].text_pair == "Question: is the sky blue"
    assert ds.examples[0].group == ds.examples[1].group != ds.examples[2].group
    assert [ex.id for ex in ds.examples] == ["dev-0", "dev-1", "dev-2"]
    with pytest.raises(OverseerError, match=r"record 'bad-0' .*label 'maybe' is not binary"):
        load_dataset("boolq", path=write_jsonl(tmp_path / "bad.jsonl", [{**BOOLQ[0], "answer": "maybe"}]))


def test_amazon_title_and_content(tmp_path):
    path = write_jsonl(
        tmp_path / "test.jsonl",
        [
            {"label": 1, "title": "Great", "content": "Loved it."},
            {"label": 0, "title": "", "content": "Broke in a day."},
        ],
    )
    ds = load_dataset("amazon_polarity", path=path, split="test")
    assert [ex.text for ex in ds.examples] == ["Great Loved it.", "Broke in a day."]
    assert ds.labels() == [1, 0] and ds.pairing == "single"


# --- the hub, without network ---------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network and an empty cache, even if datasets/huggingface_hub were imported already."""
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


@pytest.mark.parametrize("name", PAPER_DATASETS)
def test_hub_without_network_is_a_clean_error(offline, name):
    with pytest.raises(OverseerError) as err:
        load_dataset(name, limit=5)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"dataset {name!r} could not be downloaded" in msg
    assert HUB_SOURCES[name].repo in msg
    assert "path=" in msg and "--data-path" in msg


def test_registry_entries():
    for name in PAPER_DATASETS:
        info = dataset_info(name)
        assert not info.offline and HUB_SOURCES[name].repo in info.source
        assert len(HUB_SOURCES[name].revision) == 40
    assert dataset_info("local").offline


def test_unknown_split_is_checked_before_any_download():
    with pytest.raises(
        OverseerError, match=r"dataset 'boolq': unknown split 'test'; allowed: train, validation"
    ):
        load_dataset("boolq", split="test")
