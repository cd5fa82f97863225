"""The generic local-file loader: formats, field mapping, labels, pairs and its one-line errors."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from overseer.data import FieldSpec, load_dataset, local_samples
from overseer.data.local import read_records
from overseer.errors import OverseerError


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# --- the shared files (tests taking ``cosmos`` or ``hh`` are skipped where they are absent) -------


@pytest.fixture(scope="module")
def cosmos(shared_data_dir: Path) -> Path:
    return shared_data_dir / "cosmos_qa" / "valid.csv"


@pytest.fixture(scope="module")
def hh(shared_data_dir: Path) -> Path:
    return shared_data_dir / "hh_rlhf" / "harmless-base-test.jsonl.gz"


@pytest.fixture(scope="module")
def hh_records(hh: Path) -> list[dict]:
    with gzip.open(hh, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_cosmos_csv_with_field_mapping_and_label_map(cosmos):
    # "Is answer0 the right answer to the question?": label 1 exactly where the csv says answer 0.
    ds = load_dataset(
        "local",
        path=cosmos,
        text_field="question",
        pair_field="answer0",
        id_field="id",
        group_field="context",
        label_map={"0": 1, "1": 0, "2": 0, "3": 0},
    )
    with cosmos.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(ds) == len(rows) == 2985
    assert ds.pairing == "concat"
    assert Counter(ds.labels()) == {1: 744, 0: 2241}
    assert [ex.id for ex in ds.examples] == [r["id"] for r in rows]
    for ex, row in zip(ds.examples, rows, strict=True):
        assert (ex.text, ex.text_pair, ex.group) == (row["question"], row["answer0"], row["context"])
        assert ex.label == int(row["label"] == "0")


def test_cosmos_labels_are_not_binary_without_a_map(cosmos):
    with pytest.raises(OverseerError, match=r"valid\.csv' record 3: label '3' is not binary") as err:
        load_dataset("local", path=cosmos, text_field="context", pair_field="question")
    assert "label_map" in str(err.value) and "\n" not in str(err.value)


def test_cosmos_label_missing_from_map_is_named(cosmos):
    with pytest.raises(OverseerError, match=r"label '1' is not in label_map; label_map keys: '0'"):
        load_dataset("local", path=cosmos, text_field="context", label_map={"0": 1})


def test_hh_chosen_rejected_is_a_balanced_comparison(hh, hh_records):
    ds = load_dataset("local", path=hh, chosen_field="chosen", rejected_field="rejected")
    assert ds.pairing == "compare"
    assert len(ds) == len(hh_records) == 2312
    assert Counter(ds.labels()) == {1: 1156, 0: 1156}
    for ex, rec in zip(ds.examples, hh_records, strict=True):
        chosen_first = (ex.text, ex.text_pair) == (rec["chosen"], rec["rejected"])
        rejected_first = (ex.text, ex.text_pair) == (rec["rejected"], rec["chosen"])
        assert chosen_first != rejected_first  # exactly one order, and it is the label
        assert ex.label == int(chosen_first)
    assert ds.examples[0].id == "harmless-base-test-0"


def test_pair_order_is_seeded_deterministic_and_unrelated_to_position(hh):
    def order(seed: int) -> list[int]:
        return load_dataset(
            "local", path=hh, chosen_field="chosen", rejected_field="rejected", seed=seed
        ).labels()

    assert order(0) == order(0)
    assert order(0) != order(1)
    # the chosen-first half is spread over the file, not a block: both halves of the file are balanced
    first, second = order(0)[:1156], order(0)[1156:]
    assert abs(sum(first) - 578) < 80 and abs(sum(second) - 578) < 80


def test_limit_keeps_the_first_records_and_stays_balanced(hh):
    ds = load_dataset("local", path=hh, chosen_field="chosen", rejected_field="rejected", limit=101)
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


# --- empty texts --------------------------------------------------------------------------------


def _with_empty_texts(n: int = 120, empty: dict[int, object] | None = None) -> list[dict]:
    empty = {5: "", 40: "   \n\t", 77: None} if empty is None else empty
    return [{"text": empty.get(i, f"text {i}"), "label": i % 2} for i in range(n)]


def test_empty_texts_are_skipped_with_one_warning_line_and_counted_in_meta(tmp_path, capsys):
    path = write_jsonl(tmp_path / "data.jsonl", _with_empty_texts())
    ds = load_dataset("local", path=path)
    assert capsys.readouterr().err == (
        f"warning: 3 of 120 records in {path} have an empty text field; skipped\n"
    )
    assert len(ds) == 117
    assert not {"data-5", "data-40", "data-77"} & {ex.id for ex in ds.examples}
    assert all(ex.text.strip() for ex in ds.examples)
    assert ds.meta == {"skipped": "3 of 120 records with an empty text field ('text')"}
    assert ds.to_samples().meta == ds.meta  # the note travels with the data


def test_no_empty_text_means_no_warning_and_no_note(tmp_path, capsys):
    ds = load_dataset("local", path=write_jsonl(tmp_path / "ok.jsonl", _with_empty_texts(10, {})))
    assert len(ds) == 10 and ds.meta == {} and capsys.readouterr().err == ""


def test_empty_csv_cells_and_empty_pair_texts_are_skipped(tmp_path, capsys):
    path = tmp_path / "qa.csv"
    path.write_text("q,a,label\nq0,a0,1\n,a1,0\nq2, ,1\nq3,a3,0\n", encoding="utf-8")
    ds = load_dataset("local", path=path, text_field="q", pair_field="a")
    assert [ex.id for ex in ds.examples] == ["qa-0", "qa-3"]
    assert ds.meta["skipped"] == "2 of 4 records with an empty text field ('q' or 'a')"
    assert capsys.readouterr().err.count("\n") == 1


def test_empty_chosen_or_rejected_texts_are_skipped(tmp_path, capsys):
    records = [{"chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(10)]
    records[2]["chosen"] = " "
    records[6]["rejected"] = None
    ds = load_dataset(
        "local", path=write_jsonl(tmp_path / "prefs.jsonl", records), chosen_field="chosen", rejected_field="rejected"
    )
    assert len(ds) == 8 and sorted(ds.labels()) == [0] * 4 + [1] * 4  # balanced over what is kept
    assert ds.meta["skipped"].startswith("2 of 10 records")
    assert "warning: 2 of 10 records" in capsys.readouterr().err


def test_a_file_whose_texts_are_all_empty_is_an_error(tmp_path, capsys):
    path = write_jsonl(tmp_path / "blank.jsonl", _with_empty_texts(4, {0: "", 1: " ", 2: None, 3: "\n"}))
    message = r"every one of the 4 records in .*blank\.jsonl has an empty text field \('text'\)"
    with pytest.raises(OverseerError, match=message):
        load_dataset("local", path=path)
    assert capsys.readouterr().err == ""


def test_empty_sample_inputs_are_skipped_with_one_warning_line_and_counted(tmp_path, capsys):
    records = [{"q": f"question {i}", "a": str(i)} for i in range(6)]
    records[1]["q"] = ""
    records[3]["q"] = "  "
    records[4]["q"] = None
    path = write_jsonl(tmp_path / "qs.jsonl", records)
    ds = local_samples(path, FieldSpec(input="q", target="a"))
    assert [s.id for s in ds] == ["qs-0", "qs-2", "qs-5"]
    assert ds.meta == {"skipped": "3 of 6 records with an empty text field ('q')"}
    assert capsys.readouterr().err == f"warning: 3 of 6 records in {path} have an empty text field; skipped\n"


def test_empty_chat_inputs_from_a_function_are_skipped(tmp_path, capsys):
    from overseer.data import Sample

    records = [{"say": "hi"}, {"say": " "}, {"say": "bye"}]
    path = write_jsonl(tmp_path / "chat.jsonl", records)
    ds = local_samples(path, lambda r: Sample(input=[{"role": "user", "content": r["say"]}]))
    assert [s.id for s in ds] == ["chat-0", "chat-2"] and ds.meta["skipped"].startswith("1 of 3 records")
    assert capsys.readouterr().err.startswith("warning: 1 of 3 records")


def test_samples_whose_inputs_are_all_empty_are_an_error(tmp_path):
    path = write_jsonl(tmp_path / "none.jsonl", [{"input": "", "target": "1"}, {"input": " ", "target": "0"}])
    with pytest.raises(OverseerError, match="every one of the 2 records .* has an empty text field"):
        local_samples(path)
