"""General samples: the Sample type, local and hub loaders with field mappings, fingerprints, the binary view."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from overseer.data import (
    BinaryDataset,
    Example,
    FieldSpec,
    Sample,
    SampleDataset,
    hub_samples,
    list_sample_datasets,
    load_dataset,
    load_samples,
    local_samples,
    make_dataset,
    sample_dataset,
    sample_dataset_info,
)
from overseer.errors import OverseerError

RECORDS = [
    {"q": "What is 2+2?", "a": 4, "opts": ["3", "4"], "topic": "sums", "uid": "x1", "tpl": "t1"},
    {"q": "What is 3*3?", "a": 9, "opts": ["9", "6"], "topic": "products", "uid": "x2", "tpl": "t2"},
    {"q": "What is 1,000 - 1?", "a": "999", "opts": ["999", "1001"], "topic": "sums", "uid": "x3", "tpl": "t1"},
]
SPEC = FieldSpec(input="q", target="a", choices="opts", id="uid", group="tpl", metadata=("topic",))


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def one_line(err: pytest.ExceptionInfo[OverseerError]) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


# --- the Sample type ------------------------------------------------------------------------------


def test_sample_stores_lists_as_tuples_and_checks_messages():
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    s = Sample(input=chat, target=["4", "four"], choices=["3", "4"], id="a")
    assert s.input == tuple(chat) and s.target == ("4", "four") and s.choices == ("3", "4")
    assert s.messages == tuple(chat) and s.targets == ("4", "four")
    text = Sample("2+2?", "4", id="b")
    assert text.messages == ({"role": "user", "content": "2+2?"},) and text.targets == ("4",)
    assert text.as_json() == {
        "id": "b", "input": "2+2?", "target": "4", "choices": None, "metadata": {}, "group": None
    }


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"input": [{"role": "robot", "content": "x"}]}, "role 'robot'; allowed: system, user, assistant, tool"),
        ({"input": [{"role": "user"}]}, "must be a dict with 'role' and 'content'"),
        ({"input": 5}, "input is a int"),
        ({"input": "x", "target": 4}, "target 4 is not text"),
        ({"input": "x", "choices": "ab"}, "choices 'ab' must be a list"),
        ({"input": "x", "metadata": ["a"]}, "metadata must be a dict"),
    ],
)
def test_bad_samples_are_one_line_errors(kwargs, fragment):
    with pytest.raises(OverseerError) as err:
        Sample(id="s1", **kwargs)
    assert fragment in one_line(err) and "sample 's1'" in str(err.value)


def test_dataset_needs_unique_non_empty_ids_and_slices():
    samples = [Sample(f"q{i}", str(i), id=f"s{i}") for i in range(5)]
    ds = SampleDataset("toy", samples, source="memory")
    assert len(ds) == 5 and [s.id for s in ds] == ["s0", "s1", "s2", "s3", "s4"]
    assert ds[1].input == "q1" and isinstance(ds[1:3], SampleDataset) and [s.id for s in ds[1:3]] == ["s1", "s2"]
    assert ds[1:3].name == "toy" and ds[1:3].source == "memory"
    with pytest.raises(OverseerError, match="duplicate sample id 's0'"):
        SampleDataset("toy", [samples[0], samples[0]])
    with pytest.raises(OverseerError, match="sample 0 has an empty id"):
        SampleDataset("toy", [Sample("q")])


def test_fingerprint_is_stable_and_follows_content_only():
    samples = (
        Sample("What is 2+2?", "4", choices=("3", "4"), id="a", metadata={"k": 1}, group="g"),
        Sample([{"role": "user", "content": "Hi"}], ("hello", "hi"), id="b"),
    )
    ds = SampleDataset("toy", samples, source="here")
    # A fixed value: if this changes, every cached result keyed by sample fingerprints is invalidated.
    assert ds.fingerprint() == "55f427844f1873ae"
    assert SampleDataset("other name", samples, source="elsewhere").fingerprint() == ds.fingerprint()
    changed = (samples[0], Sample([{"role": "user", "content": "Hi"}], ("hello",), id="b"))
    assert SampleDataset("toy", changed).fingerprint() != ds.fingerprint()
    assert SampleDataset("toy", samples[::-1]).fingerprint() != ds.fingerprint()
    one = Sample("x", id="m", metadata={"a": 1, "b": [2, 3]})
    other = Sample("x", id="m", metadata={"b": [2, 3], "a": 1})  # key order does not matter
    assert SampleDataset("m", [one]).fingerprint() == SampleDataset("m", [other]).fingerprint()


# --- local files ----------------------------------------------------------------------------------


def test_jsonl_with_a_field_mapping(tmp_path):
    ds = local_samples(write_jsonl(tmp_path / "maths.jsonl", RECORDS), SPEC)
    assert ds.name == "maths" and ds.source == str(tmp_path / "maths.jsonl")
    first = ds[0]
    assert first == Sample(
        input="What is 2+2?", target="4", choices=("3", "4"), id="x1", metadata={"topic": "sums"}, group="t1"
    )
    assert [s.target for s in ds] == ["4", "9", "999"]


def test_default_fields_and_ids(tmp_path):
    path = write_jsonl(tmp_path / "plain.jsonl", [{"input": "a?", "target": "b"}, {"input": "c?", "target": "d"}])
    ds = local_samples(path)
    assert [(s.id, s.input, s.target) for s in ds] == [("plain-0", "a?", "b"), ("plain-1", "c?", "d")]


def test_every_format_reads_the_same_samples(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    flat = [{"question": r["q"], "answer": str(r["a"]), "o1": r["opts"][0], "o2": r["opts"][1]} for r in RECORDS]
    spec = FieldSpec(input="question", target="answer", choices=("o1", "o2"))
    paths = [write_jsonl(tmp_path / "d.jsonl", flat)]
    (tmp_path / "d.json").write_text(json.dumps(flat), encoding="utf-8")
    paths.append(tmp_path / "d.json")
    for name, delim in (("d.csv", ","), ("d.tsv", "\t")):
        with (tmp_path / name).open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(flat[0]), delimiter=delim)
            writer.writeheader()
            writer.writerows(flat)
        paths.append(tmp_path / name)
    with gzip.open(tmp_path / "d.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write("".join(json.dumps(r) + "\n" for r in flat))
    paths.append(tmp_path / "d.jsonl.gz")
    pq.write_table(pa.Table.from_pylist(flat), tmp_path / "d.parquet")
    paths.append(tmp_path / "d.parquet")
    fingerprints = {p.name: local_samples(p, spec).fingerprint() for p in paths}
    assert len(set(fingerprints.values())) == 1, fingerprints
    assert local_samples(paths[0], spec)[2].choices == ("999", "1001")


def test_chat_input_and_several_targets_from_a_file(tmp_path):
    records = [{"messages": [{"role": "user", "content": "Name a prime."}], "answers": ["2", "3", "5"]}]
    ds = local_samples(write_jsonl(tmp_path / "chat.jsonl", records), FieldSpec(input="messages", target="answers"))
    assert ds[0].input == ({"role": "user", "content": "Name a prime."},) and ds[0].target == ("2", "3", "5")


def test_record_to_sample_function_and_its_errors(tmp_path):
    path = write_jsonl(tmp_path / "maths.jsonl", RECORDS)

    def to_sample(record: dict) -> Sample:
        return Sample(input=f"Q: {record['q']}", target=str(record["a"]), metadata={"topic": record["topic"]})

    ds = local_samples(path, to_sample, name="maths-fn")
    assert ds.name == "maths-fn" and ds[0].input == "Q: What is 2+2?" and ds[0].id == "maths-0"
    with pytest.raises(OverseerError) as err:
        local_samples(path, lambda r: Sample(r["question"]))
    assert "record 'maths-0'" in one_line(err) and "no field 'question'" in str(err.value) and "'q'" in str(err.value)
    with pytest.raises(OverseerError, match="returned a dict, not a Sample"):
        local_samples(path, lambda r: r)


def test_missing_field_names_the_record_and_the_fields_present(tmp_path):
    path = write_jsonl(tmp_path / "maths.jsonl", RECORDS)
    with pytest.raises(OverseerError) as err:
        local_samples(path, FieldSpec(input="question", target="a"))
    msg = one_line(err)
    assert "no field 'question' (input field)" in msg and "'q', 'a'" in msg and "maths-0" in msg
    with pytest.raises(OverseerError, match="holds 'What is 2\\+2\\?', not a list"):
        local_samples(path, FieldSpec(input="q", target="a", choices="q"))


def test_limit_shuffle_and_folders(tmp_path):
    records = [{"input": f"q{i}", "target": str(i)} for i in range(20)]
    write_jsonl(tmp_path / "test.jsonl", records)
    write_jsonl(tmp_path / "train.jsonl", records[:3])
    ds = local_samples(tmp_path, split="test", limit=5)
    assert [s.id for s in ds] == [f"test-{i}" for i in range(5)] and ds.name == "test"
    a = local_samples(tmp_path, split="test", shuffle=True, seed=1, limit=5)
    b = local_samples(tmp_path, split="test", shuffle=True, seed=1, limit=5)
    c = local_samples(tmp_path, split="test", shuffle=True, seed=2, limit=5)
    assert a == b and a != c
    assert all(s.target == s.id.split("-")[1] for s in a)  # ids keep the position in the file
    assert len(local_samples(tmp_path, split="train")) == 3
    with pytest.raises(OverseerError, match="is a folder: give split="):
        local_samples(tmp_path)
    with pytest.raises(OverseerError, match="no 'validation' data file"):
        local_samples(tmp_path, split="validation")
    with pytest.raises(OverseerError, match="limit must be a positive integer"):
        local_samples(tmp_path, split="test", limit=0)


# --- the hub, with datasets.load_dataset replaced ------------------------------------------------


@pytest.fixture
def fake_hub(monkeypatch):
    import datasets

    calls = []

    def load(repo, name=None, *, revision=None, split=None, data_dir=None):
        calls.append({"repo": repo, "name": name, "revision": revision, "split": split, "data_dir": data_dir})
        return datasets.Dataset.from_list([{"input": f"q{i}", "target": str(i)} for i in range(12)])

    monkeypatch.setattr(datasets, "load_dataset", load)
    return calls


def test_hub_samples_pin_the_revision_and_pick_like_local_files(fake_hub, tmp_path):
    ds = hub_samples("org/toy", revision="a" * 40, split="test", config="main", limit=4, shuffle=True, seed=3)
    assert fake_hub == [{"repo": "org/toy", "name": "main", "revision": "a" * 40, "split": "test", "data_dir": None}]
    assert ds.name == "org/toy" and ds.source == f"hf://datasets/org/toy@{'a' * 40}/main[test]"
    path = write_jsonl(tmp_path / "test.jsonl", [{"input": f"q{i}", "target": str(i)} for i in range(12)])
    local = local_samples(path, limit=4, shuffle=True, seed=3)
    assert [s.id for s in ds] == [s.id for s in local] and ds.fingerprint() == local.fingerprint()


def test_hub_samples_need_a_revision_and_report_failures_on_one_line(monkeypatch):
    import datasets

    with pytest.raises(OverseerError, match="revision must be a commit sha"):
        hub_samples("org/toy", revision="", split="test")

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the hub\nretry later")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(OverseerError) as err:
        hub_samples("org/toy", revision="b" * 40, split="test")
    msg = one_line(err)
    assert "org/toy@bbbbbbbb" in msg and "Couldn't reach the hub retry later" in msg and "path=" in msg


# --- binary tasks as a checked view of samples ----------------------------------------------------


def test_binary_view_checks_targets_and_names_the_sample():
    samples = SampleDataset("yn", [Sample("Is 2 even?", "1", id="a"), Sample("Is 3 even?", "false", id="b")])
    ds = BinaryDataset.from_samples(samples)
    assert ds.name == "yn" and ds.labels() == [1, 0] and ds.pairing == "single"
    bad = SampleDataset("yn", [*samples, Sample("How many?", "7", id="c")])
    with pytest.raises(OverseerError) as err:
        BinaryDataset.from_samples(bad)
    expected = "dataset 'yn': sample 'c' has target '7'; allowed: 0, 1, true, false (or give label_map=...)"
    assert one_line(err) == expected
    assert BinaryDataset.from_samples(bad, label_map={"1": 1, "false": 0, "7": 1}).labels() == [1, 0, 1]
    with pytest.raises(OverseerError, match="sample 'c' has a chat input"):
        BinaryDataset.from_samples([Sample([{"role": "user", "content": "x"}], "1", id="c")])
    with pytest.raises(OverseerError, match="sample 'c' has several targets"):
        BinaryDataset.from_samples([Sample("x", ("0", "1"), id="c")])
    with pytest.raises(OverseerError, match="needs a text in metadata\\['text_pair'\\] for pairing 'concat'"):
        BinaryDataset.from_samples([Sample("x", "1", id="c")], pairing="concat")


def test_binary_round_trip_keeps_examples_and_fingerprint():
    examples = [
        Example("q1", "Q: sky colour?", 1, text_pair="A: blue", group="g1"),
        Example("q2", "Q: sky colour?", 0, text_pair="A: green", group="g1"),
    ]
    concat = make_dataset("qa", examples, pairing="concat", source="memory")
    samples = concat.to_samples()
    assert samples[0].target == "1" and samples[0].metadata == {"text_pair": "A: blue"} and samples[0].group == "g1"
    back = BinaryDataset.from_samples(samples, pairing="concat")
    assert back == concat and back.fingerprint() == concat.fingerprint()
    geo = load_dataset("geo_facts", limit=100)
    assert BinaryDataset.from_samples(geo.to_samples()).fingerprint() == geo.fingerprint()


def test_existing_binary_datasets_keep_their_fingerprints(shared_data_dir: Path):
    # Recorded before samples were added: weak-to-strong caches and results are keyed by these.
    ds = load_dataset("cosmos_qa", path=shared_data_dir / "cosmos_qa" / "valid.csv", split="validation")
    assert ds.fingerprint() == "68d4a0a9d50dee95"
    hh = load_dataset("anthropic_hh", path=shared_data_dir / "hh_rlhf" / "harmless-base-test.jsonl.gz", split="test")
    assert hh.fingerprint() == "17979b74806cb93e"


# --- the registry ---------------------------------------------------------------------------------


@sample_dataset("toy_arithmetic", offline=True, description="sums for the registry test", source="this test")
def toy_arithmetic(limit: int | None = None) -> SampleDataset:
    samples = [Sample(f"{i}+{i}=?", str(2 * i), id=f"sum-{i}") for i in range(10)]
    return SampleDataset("toy_arithmetic", samples[:limit], "this test")


def test_registry_lists_and_loads_sample_datasets():
    listed = {info.name: info for info in list_sample_datasets()}
    assert {"gsm8k", "bbq", "toy_arithmetic"} <= set(listed)
    assert listed["toy_arithmetic"].offline and not listed["gsm8k"].offline
    assert "openai/gsm8k" in listed["gsm8k"].source
    assert [s.target for s in load_samples("toy_arithmetic", limit=3)] == ["0", "2", "4"]
    assert sample_dataset_info("toy_arithmetic").loader is toy_arithmetic
    with pytest.raises(OverseerError, match=r"unknown sample dataset 'nope'; allowed: .*gsm8k"):
        load_samples("nope")
    with pytest.raises(OverseerError, match="sample dataset 'toy_arithmetic': .*unexpected keyword argument 'split'"):
        load_samples("toy_arithmetic", split="test")


def test_bbq_as_multiple_choice_samples(shared_data_dir: Path):
    ds = load_samples("bbq", path=shared_data_dir / "bbq", categories=("Age",), limit=2)
    first = ds[0]
    assert first.id == "Age/0" and first.choices == ("The grandfather", "The grandson", "Can't be determined")
    assert first.target == "C" and first.group == "Age/1" and first.metadata["context_condition"] == "ambig"
    assert first.input.startswith("I saw a grandson and their grandfather") and first.input.endswith("phone?")
