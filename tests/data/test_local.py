"""The generic local-file loader: formats, field mapping, labels, pairs and its one-line errors."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from overseer.data import load_dataset
from overseer.data.local import read_records
from overseer.errors import OverseerError

pytestmark = pytest.mark.shared_data

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
COSMOS = DATA / "cosmos_qa" / "valid.csv"
HH = DATA / "hh_rlhf" / "harmless-base-test.jsonl.gz"


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def hh_records() -> list[dict]:
    with gzip.open(HH, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# --- the shared files ---------------------------------------------------------------------------


def test_cosmos_csv_with_field_mapping_and_label_map():
    # "Is answer0 the right answer to the question?": label 1 exactly where the csv says answer 0.
    ds = load_dataset(
        "local",
        path=COSMOS,
        text_field="question",
        pair_field="answer0",
        id_field="id",
        group_field="context",
        label_map={"0": 1, "1": 0, "2": 0, "3": 0},
    )
    with COSMOS.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(ds) == len(rows) == 2985
    assert ds.pairing == "concat"
    assert Counter(ds.labels()) == {1: 744, 0: 2241}
    assert [ex.id for ex in ds.examples] == [r["id"] for r in rows]
    for ex, row in zip(ds.examples, rows, strict=True):
        assert (ex.text, ex.text_pair, ex.group) == (row["question"], row["answer0"], row["context"])
        assert ex.label == int(row["label"] == "0")


def test_cosmos_labels_are_not_binary_without_a_map():
    with pytest.raises(OverseerError, match=r"valid\.csv' record 3: label '3' is not binary") as err:
        load_dataset("local", path=COSMOS, text_field="context", pair_field="question")
    assert "label_map" in str(err.value) and "\n" not in str(err.value)


def test_cosmos_label_missing_from_map_is_named():
    with pytest.raises(OverseerError, match=r"label '1' is not in label_map; label_map keys: '0'"):
        load_dataset("local", path=COSMOS, text_field="context", label_map={"0": 1})


def test_hh_chosen_rejected_is_a_balanced_comparison(hh_records):
    ds = load_dataset("local", path=HH, chosen_field="chosen", rejected_field="rejected")
    assert ds.pairing == "compare"
    assert len(ds) == len(hh_records) == 2312
    assert Counter(ds.labels()) == {1: 1156, 0: 1156}
    for ex, rec in zip(ds.examples, hh_records, strict=True):
        chosen_first = (ex.text, ex.text_pair) == (rec["chosen"], rec["rejected"])
        rejected_first = (ex.text, ex.text_pair) == (rec["rejected"], rec["chosen"])
        assert chosen_first != rejected_first  # exactly one order, and it is the label
        assert ex.label == int(chosen_first)
    assert ds.examples[0].id == "harmless-base-test-0"


def test_pair_order_is_seeded_deterministic_and_unrelated_to_position(hh_records):
    def order(seed: int) -> list[int]:
        return load_dataset(
            "local", path=HH, chosen_field="chosen", rejected_field="rejected", seed=seed
        ).labels()

    assert order(0) == order(0)
    assert order(0) != order(1)
    # the chosen-first half is spread over the file, not a block: both halves of the file are balanced
    first, second = order(0)[:1156], order(0)[1156:]
    assert abs(sum(first) - 578) < 80 and abs(sum(second) - 578) < 80


def test_limit_keeps_the_first_records_and_stays_balanced():
    ds = load_dataset("local", path=HH, chosen_field="chosen", rejected_field="rejected", limit=101)
    assert [ex.id for ex in ds.examples] == [f"harmless-base-test-{i}" for i in range(101)]
    assert sum(ds.labels()) in (50, 51)


# --- formats ------------------------------------------------------------------------------------

RECORDS = [
    {"id": "a", "sentence": "the sky is green", "truth": False},
    {"id": "b", "sentence": "water is wet", "truth": True},
    {"id": "c", "sentence": "two is even", "truth": 1},
    {"id": "d", "sentence": "three is even", "truth": "FALSE"},
    {"id": "e", "sentence": "one is odd", "truth": 1.0},
]


def _expected_labels(ds) -> None:
    assert [ex.id for ex in ds.examples] == ["a", "b", "c", "d", "e"]
    assert ds.labels() == [0, 1, 1, 0, 1]
    assert ds.examples[1].text == "water is wet"


@pytest.mark.parametrize(
    "fmt", ["jsonl", "jsonl.gz", "json", "json-lines.json", "csv", "csv.gz", "tsv", "parquet"]
)
def test_every_format_reads_the_same_records(tmp_path, fmt):
    path = tmp_path / f"facts.{fmt}"
    rows = [{**r, "truth": str(r["truth"])} for r in RECORDS]  # csv cells are strings
    if fmt in ("jsonl", "json-lines.json"):
        write_jsonl(path, RECORDS)
    elif fmt == "jsonl.gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in RECORDS)
    elif fmt == "json":
        path.write_text(json.dumps(RECORDS), encoding="utf-8")
    elif fmt in ("csv", "csv.gz", "tsv"):
        opener = gzip.open if fmt.endswith(".gz") else open
        with opener(path, "wt", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t" if fmt == "tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    assert [r["id"] for r in read_records(path)] == ["a", "b", "c", "d", "e"]
    ds = load_dataset("local", path=path, text_field="sentence", label_field="truth", id_field="id")
    _expected_labels(ds)
    assert ds.pairing == "single" and ds.source == str(path)


def test_csv_cells_stay_strings(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("id,text,label\n007,hello,1\n", encoding="utf-8")
    assert read_records(path) == [{"id": "007", "text": "hello", "label": "1"}]


def test_default_ids_and_groups(tmp_path):
    path = write_jsonl(
        tmp_path / "plain.jsonl", [{"text": "x", "label": 0, "topic": "t"}, {"text": "y", "label": 1}]
    )
    ds = load_dataset("local", path=path)
    assert [ex.id for ex in ds.examples] == ["plain-0", "plain-1"]
    assert [ex.group for ex in ds.examples] == [None, None]
    with pytest.raises(OverseerError, match=r"record 1 has no field 'topic' \(group_field\)"):
        load_dataset("local", path=path, group_field="topic")


def test_prompt_field_is_prepended_to_both_responses(tmp_path):
    path = write_jsonl(tmp_path / "prefs.jsonl", [{"prompt": "Q?", "good": "yes", "bad": "no"}] * 4)
    ds = load_dataset("local", path=path, prompt_field="prompt", chosen_field="good", rejected_field="bad")
    assert Counter(ds.labels()) == {1: 2, 0: 2}
    for ex in ds.examples:
        chosen, rejected = (ex.text, ex.text_pair) if ex.label else (ex.text_pair, ex.text)
        assert (chosen, rejected) == ("Q?\nyes", "Q?\nno")


# --- errors -------------------------------------------------------------------------------------


def test_missing_field_names_field_file_and_fields_present(tmp_path):
    path = write_jsonl(tmp_path / "facts.jsonl", RECORDS)
    with pytest.raises(OverseerError) as err:
        load_dataset("local", path=path, text_field="statement", label_field="truth")
    msg = str(err.value)
    assert "'statement'" in msg and "facts.jsonl" in msg
    assert "fields present: 'id', 'sentence', 'truth'" in msg
    with pytest.raises(
        OverseerError, match=r"no field 'rejected' \(rejected_field\); fields present: 'chosen'"
    ):
        pairs = write_jsonl(tmp_path / "p.jsonl", [{"chosen": "a"}])
        load_dataset("local", path=pairs, chosen_field="chosen", rejected_field="rejected")


@pytest.mark.parametrize("bad", ["maybe", 2, -1, None, "yes"])
def test_non_binary_label_is_named(tmp_path, bad):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"text": "ok", "label": 1}, {"text": "odd", "label": bad}])
    with pytest.raises(OverseerError, match=r"bad\.jsonl' record 1") as err:
        load_dataset("local", path=path)
    assert repr(bad) in str(err.value) or "is empty" in str(err.value)


def test_label_map_accepts_typed_and_string_keys(tmp_path):
    path = write_jsonl(tmp_path / "stars.jsonl", [{"text": "a", "label": 5}, {"text": "b", "label": 1}])
    assert load_dataset("local", path=path, label_map={5: 1, 1: 0}).labels() == [1, 0]
    assert load_dataset("local", path=path, label_map={"5": "true", "1": "false"}).labels() == [1, 0]


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(OverseerError, match=r"data file not found: '.*nope\.jsonl'"):
        load_dataset("local", path=tmp_path / "nope.jsonl")
    with pytest.raises(OverseerError, match="is a directory"):
        load_dataset("local", path=tmp_path)
    with pytest.raises(OverseerError, match="needs a data file: path="):
        load_dataset("local")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", "", "holds no records"),
        ("blank.jsonl", "\n\n", "holds no records"),
        ("header.csv", "text,label\n", "holds no records"),
        ("empty.json", "[]", "holds no records"),
        ("notes.txt", "hello", "unsupported format; supported: .jsonl"),
        ("broken.jsonl", '{"text": "a", "label": 1}\n{"text": \n', "line 2 is not valid JSON"),
        ("list.jsonl", "[1, 2]\n", "line 1 is a JSON list, not an object"),
        ("scalars.json", "[1, 2]", "must hold a JSON list of objects"),
        ("ragged.csv", "text,label\na,1,extra\n", "record 0 has more cells than the header"),
    ],
)
def test_unreadable_files_are_one_line_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(OverseerError, match=message) as err:
        load_dataset("local", path=path)
    assert name in str(err.value) and "\n" not in str(err.value)


def test_corrupt_gzip_is_a_one_line_error(tmp_path):
    path = tmp_path / "corrupt.jsonl.gz"
    path.write_bytes(b"this is not gzip")
    with pytest.raises(OverseerError, match=r"cannot read '.*corrupt\.jsonl\.gz' as \.jsonl\.gz"):
        load_dataset("local", path=path)


def test_argument_errors(tmp_path):
    path = write_jsonl(
        tmp_path / "x.jsonl", [{"text": "a", "label": 1, "id": "k"}, {"text": "b", "label": 0, "id": "k"}]
    )
    with pytest.raises(OverseerError, match="give both chosen_field and rejected_field"):
        load_dataset("local", path=path, chosen_field="text")
    with pytest.raises(OverseerError, match="limit must be a positive integer"):
        load_dataset("local", path=path, limit=0)
    with pytest.raises(OverseerError, match="duplicate example id 'k'"):
        load_dataset("local", path=path, id_field="id")
    with pytest.raises(OverseerError, match="unexpected keyword argument 'txt_field'"):
        load_dataset("local", path=path, txt_field="text")
