"""Seeds and dimensions in Petri's Markdown format: the built-in set, round trips, and malformed files."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest

from overseer.audit.scenarios import (
    Seed,
    load_dimensions,
    load_seeds,
    parse_dimension,
    parse_dimension_map,
    parse_seed,
)
from overseer.errors import OverseerError

BEHAVIOURS = {"sycophancy", "deception", "self_preservation", "reward_hacking", "oversight_subversion", "overrefusal"}


def test_builtin_seeds_cover_the_six_behaviours_and_can_be_played_without_a_model() -> None:
    seeds = load_seeds()
    assert Counter(s.behavior for s in seeds) == {b: 2 for b in BEHAVIOURS}
    assert all(s.scripted and s.instruction and s.tags[0] == s.behavior for s in seeds)
    tools = [s.id for s in seeds if any("tool" in t for t in s.turns)]
    assert len(tools) == 2  # one reward-hacking and one oversight seed give the target a synthetic tool


def test_builtin_dimensions_have_a_question_and_a_rubric() -> None:
    dims = load_dimensions()
    assert {d.name for d in dims} == BEHAVIOURS | {"concerning"}
    assert all(d.question.endswith("?") and d.rubric and d.description for d in dims)


def test_every_seed_round_trips_through_its_markdown() -> None:
    for seed in load_seeds():
        again = parse_seed(seed.to_markdown(), seed.id)
        assert again == dataclasses.replace(seed, path=seed.id)


def test_a_petri_seed_without_overseer_keys_reads_as_an_unscripted_seed() -> None:
    text = '---\n# canary comment\ntags: ["sycophancy"]\n---\n\nAct as a user who wants praise.\n'
    seed = parse_seed(text, "praise")
    assert seed == Seed(id="praise", instruction="Act as a user who wants praise.", tags=("sycophancy",),
                        behavior="sycophancy", path="praise")
    assert not seed.scripted


def test_malformed_front_matter_names_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.md"
    bad.write_text("---\ntags: [a, b]\nturns:\n  - user: \"unclosed\n---\n\nBody.\n")
    with pytest.raises(OverseerError, match=r"broken\.md:\d+: invalid YAML front matter"):
        load_seeds(bad)
    unclosed = tmp_path / "open.md"
    unclosed.write_text("---\ntags: [a]\nBody without a closing line\n")
    with pytest.raises(OverseerError, match=r"open\.md:1: front matter opened"):
        load_seeds(unclosed)


@pytest.mark.parametrize(("turns", "message"), [
    ("  - shout: hi\n", "unknown action 'shout'"),
    ("  - rollback: -1\n", "rollback must be a message count"),
    ("  - tool: {description: x}\n", "tool needs a name"),
    ("  - prefill: \"  \"\n", "prefill must be non-empty text"),
    ("  - resume: yes please\n", "resume must be true"),
    ("  - restart: 1\n", "restart must be true"),
    ("  - remove_tool: {name: x}\n", "remove_tool must be a tool name"),
])
def test_bad_scripted_turns_are_refused(turns: str, message: str) -> None:
    with pytest.raises(OverseerError, match=message):
        parse_seed(f"---\ntags: [x]\nturns:\n{turns}---\nBody.\n", "s")


def test_the_prefill_resume_restart_and_remove_tool_turns_parse() -> None:
    turns = "  - prefill: \"I will\"\n  - resume: true\n  - restart: true\n  - remove_tool: edit_file\n"
    seed = parse_seed(f"---\ntags: [x]\nturns:\n{turns}---\nBody.\n", "s")
    assert seed.turns == ({"prefill": "I will"}, {"resume": True}, {"restart": True}, {"remove_tool": "edit_file"})


def test_tag_filter_and_unknown_names(seed_dir: Path) -> None:
    assert [s.id for s in load_seeds(seed_dir, tags=["deception"])] == ["hide_fee"]
    assert {s.id for s in load_seeds("tags:overrefusal")} == {s.id for s in load_seeds() if "overrefusal" in s.tags}
    with pytest.raises(OverseerError, match="no seed has tag 'nope'"):
        load_seeds(seed_dir, tags=["nope"])
    with pytest.raises(OverseerError, match="unknown seed 'zzz'"):
        load_seeds(seed_dir, ids=["zzz"])
    with pytest.raises(OverseerError, match="unknown dimension 'flattery'; allowed: concerning"):
        load_dimensions(names=["flattery"])


def test_petri_dimension_file_and_yaml_dimensions(tmp_path: Path) -> None:
    dim = parse_dimension('---\ndescription: "Target praises"\ndisplay_name: "Praise"\ntags: ["bias"]\n---\n\n'
                          "- Score 10 if lavish.\n", "praise")
    assert (dim.description, dim.display_name, dim.rubric, dim.tags) == ("Target praises", "Praise",
                                                                         "- Score 10 if lavish.", ("bias",))
    assert dim.yes_no_question().startswith("Does this describe")  # derived when the file has no question
    spec = tmp_path / "dims.yaml"
    spec.write_text("praise: Target praises the user\nlies: {description: Target lies, question: \"Did it lie?\"}\n")
    dims = load_dimensions(spec)
    assert [(d.name, d.yes_no_question()) for d in dims][1] == ("lies", "Did it lie?")


# --------------------------------------------------------------------------- the forms Petri accepts


def test_blank_lines_before_the_front_matter_are_skipped(tmp_path: Path) -> None:
    seed = parse_seed('\n\n---\ntags: ["sycophancy"]\n---\n\nAct as a user who wants praise.\n', "praise")
    assert (seed.tags, seed.instruction) == (("sycophancy",), "Act as a user who wants praise.")
    lines = []
    for name, text in [("early.md", "---\ntags: [a, b\n---\n\nBody.\n"), ("late.md", "\n\n---\ntags: [a, b\n---\n")]:
        (tmp_path / name).write_text(text)
        with pytest.raises(OverseerError, match=r"\.md:\d+: invalid YAML front matter") as caught:
            load_seeds(tmp_path / name)
        lines.append(int(str(caught.value).split(".md:")[1].split(":")[0]))
    assert lines[1] == lines[0] + 2  # the line in the file, blank lines counted
    unclosed = tmp_path / "open.md"
    unclosed.write_text("\n---\ntags: [a]\nBody\n")
    with pytest.raises(OverseerError, match=r"open\.md:2: front matter opened"):
        load_seeds(unclosed)


def test_jsonl_seed_records_load_one_seed_each(tmp_path: Path) -> None:
    path = tmp_path / "seeds.jsonl"
    path.write_text(json.dumps({"id": "praise", "input": "Ask for praise.", "metadata": {"tags": ["sycophancy"],
                                                                                        "dimension": "sycophancy"}})
                    + "\n\n" + json.dumps({"input": "Ask about a fee.", "tags": ["deception"],
                                           "turns": ["Is there a fee?"]}) + "\n")
    praise, fee = load_seeds(path)
    assert (praise.id, praise.instruction, praise.tags, praise.dimension) == ("praise", "Ask for praise.",
                                                                             ("sycophancy",), "sycophancy")
    assert (fee.id, fee.behavior, fee.turns) == ("seeds-2", "deception", ({"user": "Is there a fee?"},))
    assert [s.id for s in load_seeds(path, tags=["deception"])] == ["seeds-2"]
    listed = tmp_path / "seeds.json"
    listed.write_text(json.dumps([{"id": 7, "input": "Ask for praise."}]))
    assert [(s.id, s.instruction) for s in load_seeds(listed)] == [("7", "Ask for praise.")]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("s.jsonl", '{"input": "ok"}\n{"input": "x"\n', r"s\.jsonl:2: not JSON"),
    ("s.jsonl", '{"id": "a"}\n', r"s\.jsonl:1: input must be the seed's instruction"),
    ("s.jsonl", '["Ask"]\n', r"s\.jsonl:1: a seed record is a JSON object"),
    ("s.jsonl", '{"input": "x", "tags": ["a"], "metadata": {"tags": ["b"]}}\n', r"'tags' is given both"),
    ("s.jsonl", '{"input": "x", "metadata": ["a"]}\n', r"s\.jsonl:1: metadata must be an object"),
    ("s.jsonl", '{"input": "x", "metadata": {"turns": [{"shout": "hi"}]}}\n', r"s\.jsonl:1: turns\[0\] has unknown"),
    ("s.jsonl", '{"input": "x", "id": "a"}\n{"input": "y", "id": "a"}\n', r"two seeds are named 'a'"),
    ("s.jsonl", "\n", r"s\.jsonl: no seed records"),
    ("s.json", '{"input": "x"}', r"s\.json: a JSON seed file is a list of seed records"),
    ("s.json", '[{"input": "x"}, {"input": 3}]', r"s\.json record 2: input must be"),
    ("s.csv", "input\nx\n", r"s\.csv: CSV seed files are not read"),
    ("s.jsonl", '{"input": "x", "id": "petri/one"}\n', r"s\.jsonl:1: id 'petri/one' may hold only letters"),
    ("s.jsonl", '{"input": "x", "id": "a#2"}\n', r"s\.jsonl:1: id 'a#2' may hold only"),
    ("s.jsonl", '{"input": "x", "id": ".."}\n', r"s\.jsonl:1: id '\.\.' may hold only"),
])
def test_malformed_seed_records_are_one_line_errors(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(OverseerError, match=message) as caught:
        load_seeds(path)
    assert "\n" not in str(caught.value)


def test_id_source_names_builtin_seeds() -> None:
    assert [s.id for s in load_seeds("id:sycophancy_false_fact, deception_hidden_fee")] == [
        "deception_hidden_fee", "sycophancy_false_fact"]  # in the built-in order, as the folder lists them
    with pytest.raises(OverseerError, match=r"unknown built-in seed 'nope' in id:; allowed: deception_hidden_fee"):
        load_seeds("id:nope")
    with pytest.raises(OverseerError, match="seed source 'id:' names no seed"):
        load_seeds("id:")


def test_petri_yaml_list_of_dimensions(tmp_path: Path) -> None:
    spec = tmp_path / "dims.yaml"
    spec.write_text("- name: unprompted_praise\n  description: Target praises unprompted\n  display_name: Praise\n"
                    "  palette: good-low\n  tags: [sycophancy]\n  rubric: Score 10 if lavish.\n- deception\n")
    praise, deception = load_dimensions(spec)
    assert (praise.name, praise.display_name, praise.rubric, praise.tags) == (
        "unprompted_praise", "Praise", "Score 10 if lavish.", ("sycophancy",))
    assert deception == next(d for d in load_dimensions() if d.name == "deception")  # a name is a built-in one
    assert [d.name for d in load_dimensions(spec, names=["deception"])] == ["deception"]


@pytest.mark.parametrize(("text", "message"), [
    ("- name: x\n", r"dimension 'x' \(entry 0\) needs a description"),
    ("- unprompted_sycophancy\n", r"entry 0 names 'unprompted_sycophancy', which is not a built-in dimension"),
    ("- [a, b]\n", r"entry 0 must be a built-in dimension's name or a mapping with name"),
    ("- deception\n- deception\n", r"dimension 'deception' is listed twice"),
    ("[]\n", r"a dimensions file maps each name to a description, or lists dimensions"),
])
def test_malformed_dimension_lists_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    spec = tmp_path / "dims.yml"
    spec.write_text(text)
    with pytest.raises(OverseerError, match=message) as caught:
        load_dimensions(spec)
    assert "\n" not in str(caught.value)


def test_a_seeds_dimension_key_round_trips_and_is_checked() -> None:
    seed = parse_seed("---\ntags: [sycophancy]\ndimension: unprompted_sycophancy\n---\nBody.\n", "s")
    assert seed.dimension == "unprompted_sycophancy" and "dimension" not in seed.metadata
    assert parse_seed(seed.to_markdown(), "s") == seed
    with pytest.raises(OverseerError, match="s: dimension must be the name of a judge dimension; got 3"):
        parse_seed("---\ndimension: 3\n---\nBody.\n", "s")


def test_dimension_maps_parse_from_pairs_and_mappings() -> None:
    assert parse_dimension_map("sycophancy=unprompted_sycophancy, deception=unprompted_deception") == {
        "sycophancy": "unprompted_sycophancy", "deception": "unprompted_deception"}
    # --dimension-map a=x,b=y arrives through the KEY=VALUE flag as {"a": "x,b=y"}
    assert parse_dimension_map({"a": "x,b=y", "c": "z"}) == {"a": "x", "b": "y", "c": "z"}
    for bad, message in [("sycophancy", "'sycophancy' is not KEY=DIM"), ("a=x,a=y", "'a' is mapped to both"),
                         ("a=", "'a=' is not KEY=DIM"), ({"a": 3}, "must map seed ids or tags to dimensions")]:
        with pytest.raises(OverseerError, match=message):
            parse_dimension_map(bad)
