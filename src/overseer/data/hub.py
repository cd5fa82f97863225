"""The weak-to-strong paper's datasets (Burns et al. 2023), formatted as binary tasks.

Each loader reads from the Hugging Face hub at a pinned revision, or from ``path=``: a single
data file (then ``split`` only names what the file holds), or a clone of the hub repository or of
the dataset's own source repository, where the files for ``split`` are found by name.

Formatting follows the paper's released code (openai/weak-to-strong, ``weak_to_strong/datasets.py``)
with three deliberate changes:

- question + candidate answer tasks use the "concat" pairing (the model layer joins them with a
  newline for causal models, or encodes a sentence pair for encoders), not one pre-joined string;
- correct-vs-wrong and chosen-vs-rejected are balanced exactly by a seeded shuffle, not by coin
  flips, and cosmos_qa drops the records whose right answer is "None of the above choices ."
  (the paper labels those 0, which biases the classes and shows no right answer at all);
- anthropic_hh is a pairwise comparison (chosen vs rejected, scored separately), not single texts.

``group`` holds a hash of the shared source text (question, passage, context, dialogue prompt), so
that examples built on the same text land in the same split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from overseer.data._files import check_limit, get_field, get_text, parse_label, read_split
from overseer.data._registry import dataset
from overseer.data._schema import BinaryDataset, Example, Pairing, make_dataset
from overseer.data._sources import hub_source, hub_split
from overseer.data.local import balanced_flags, pairwise_examples
from overseer.errors import OverseerError

__all__ = ["HUB_SOURCES", "HubSource", "amazon_polarity", "anthropic_hh", "boolq", "cosmos_qa", "sciq"]


@dataclass(frozen=True)
class HubSource:
    """Where a dataset lives on the hub, and which splits it has (with labels)."""

    repo: str
    revision: str
    splits: tuple[str, ...]


# Revisions are commit shas of ``main`` (cosmos_qa: of ``refs/convert/parquet``, since its ``main``
# holds only a loading script, which ``datasets`` >= 4 no longer runs).
HUB_SOURCES: dict[str, HubSource] = {
    "sciq": HubSource(
        "allenai/sciq", "2c94ad3e1aafab77146f384e23536f97a4849815", ("train", "validation", "test")
    ),
    "boolq": HubSource("google/boolq", "35b264d03638db9f4ce671b711558bf7ff0f80d5", ("train", "validation")),
    "amazon_polarity": HubSource(
        "fancyzhx/amazon_polarity", "9d9c45c18f8c3cf1b23a3c27917b60cbf28f3289", ("train", "test")
    ),
    "cosmos_qa": HubSource(
        "allenai/cosmos_qa", "ed50fe83db62b355759053b1cd5eef344ee371e0", ("train", "validation")
    ),  # cosmos_qa's test split has no public labels
    "anthropic_hh": HubSource(
        "Anthropic/hh-rlhf", "09be8c5bbc57cb3887f3a9732ad6aa7ec602a1fa", ("train", "test")
    ),
}
NONE_OF_THE_ABOVE = "None of the above choices ."


@dataclass(frozen=True)
class _Raw:
    """Raw records in source order, each with a stable id prefix, plus where they came from."""

    records: list[tuple[str, dict[str, Any]]]  # (stable id, record)
    source: str


def _group(kind: str, text: str) -> str:
    """A short, stable group id for examples built on the same ``text``."""
    return f"{kind}:{hashlib.sha1(text.strip().encode()).hexdigest()[:12]}"


def _check_split(name: str, split: str) -> None:
    allowed = HUB_SOURCES[name].splits
    if split not in allowed:
        raise OverseerError(f"dataset {name!r}: unknown split {split!r}; allowed: {', '.join(allowed)}")


def _read_local(name: str, path: str | os.PathLike[str], split: str, subset: str | None = None) -> _Raw:
    """Records from a data file, or from the files for ``split`` in a cloned repository."""
    records, source = read_split(path, split, subset, what=f"dataset {name!r}")
    return _Raw(records, source)


def _read_hub(name: str, split: str, limit: int | None, data_dir: str | None = None) -> _Raw:
    """Records of ``split`` from the hub at the pinned revision; no network is a one-line error."""
    src = HUB_SOURCES[name]
    hint = f"pass path= (CLI: --data-path) to a local copy of {src.repo} (a data file or a clone)"
    ds = hub_split(src.repo, revision=src.revision, split=split, data_dir=data_dir, what=f"dataset {name!r}", hint=hint)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    source = hub_source(src.repo, src.revision, split, data_dir=data_dir)
    return _Raw([(f"{split}-{i}", r) for i, r in enumerate(ds.to_list())], source)


def _load(
    name: str,
    path: str | os.PathLike[str] | None,
    split: str,
    limit: int | None,
    data_dir: str | None = None,
    hub_limit: bool = True,
) -> _Raw:
    """Validate the common arguments, then read the raw records locally or from the hub."""
    _check_split(name, split)
    check_limit(limit)
    if path is not None:
        return _read_local(name, path, split, data_dir)
    return _read_hub(name, split, limit if hub_limit else None, data_dir)


def _where(name: str, raw: _Raw, rec_id: str) -> str:
    return f"{name} record {rec_id!r} of {raw.source!r}"


def _finish(
    name: str, examples: Sequence[Example], pairing: Pairing, raw: _Raw, meta: Mapping[str, str] | None = None
) -> BinaryDataset:
    ds = make_dataset(name, examples, pairing=pairing, source=raw.source)
    return dataclasses.replace(ds, meta=dict(meta or {}))


def _correct_or_wrong(
    items: Sequence[tuple[str, str, list[str], Any]],
    seed: int,
    make: Callable[[str, str, int, Any], Example],
) -> list[Example]:
    """One example per ``(id, correct, wrong answers, context)`` item, balanced between the two.

    A seeded half shows the correct answer (label 1), the rest a random wrong one (label 0).
    """
    rng = random.Random(seed)
    flags = balanced_flags(len(items), rng)
    return [
        make(ex_id, correct if flag else rng.choice(wrong), int(flag), ctx)
        for (ex_id, correct, wrong, ctx), flag in zip(items, flags, strict=True)
    ]


# --- sciq ------------------------------------------------------------------------------------


@dataset(
    "sciq",
    offline=False,
    description="SciQ science questions: is this the right answer? (question + one candidate answer)",
    source="hf://datasets/allenai/sciq (Welbl et al. 2017)",
)
def sciq(
    path: str | os.PathLike[str] | None = None, split: str = "train", limit: int | None = None, seed: int = 0
) -> BinaryDataset:
    """SciQ as "is this answer correct?": the correct answer or one random distractor, balanced.

    Raw record (allenai/sciq, train row 0; ``support`` is not used, as in the paper)::

        {"question": "What type of organism is commonly used in preparation of foods such as cheese
          and yogurt?", "distractor3": "viruses", "distractor1": "protozoa",
          "distractor2": "gymnosperms", "correct_answer": "mesophilic organisms", "support": "..."}

    becomes ``text="Q: What type of organism ...?"``, ``text_pair="A: protozoa"``, ``label=0``.
    Source: Welbl, Liu & Gardner 2017, https://huggingface.co/datasets/allenai/sciq.
    """
    raw = _load("sciq", path, split, limit)
    items = []
    for rec_id, rec in raw.records:
        where = _where("sciq", raw, rec_id)
        question = get_text(rec, "question", where)
        correct = get_text(rec, "correct_answer", where)
        wrong = [get_text(rec, f"distractor{k}", where) for k in (1, 2, 3)]
        wrong = [w for w in wrong if w.strip() and w.strip() != correct.strip()]
        if wrong:
            items.append((rec_id, correct, wrong, question))
    examples = _correct_or_wrong(
        items[:limit],
        seed,
        lambda i, ans, y, q: Example(i, f"Q: {q}", y, text_pair=f"A: {ans}", group=_group("question", q)),
    )
    return _finish("sciq", examples, "concat", raw)


# --- boolq -----------------------------------------------------------------------------------


@dataset(
    "boolq",
    offline=False,
    description="BoolQ yes/no questions about a Wikipedia passage (passage + question)",
    source="hf://datasets/google/boolq (Clark et al. 2019)",
)
def boolq(
    path: str | os.PathLike[str] | None = None, split: str = "train", limit: int | None = None, seed: int = 0
) -> BinaryDataset:
    """BoolQ: is the answer to the question about the passage "yes"? Labels are the data's own.

    Raw record (google/boolq; the source release's jsonl adds a ``title``)::

        {"question": "do iran and afghanistan speak the same language", "answer": true,
         "passage": "Persian language -- Persian (/ˈpɜːrʒən, -ʃən/), also known by its endonym ..."}

    becomes ``text="Passage: Persian language -- ..."``, ``text_pair="Question: do iran ..."``,
    ``label=1``. ``seed`` is unused (nothing is random) and accepted for a uniform interface.
    Source: Clark et al. 2019, https://huggingface.co/datasets/google/boolq.
    """
    raw = _load("boolq", path, split, limit)
    examples = []
    for rec_id, rec in raw.records[:limit]:
        where = _where("boolq", raw, rec_id)
        passage = get_text(rec, "passage", where)
        label = parse_label(get_field(rec, "answer", where), where)
        question = get_text(rec, "question", where)
        examples.append(
            Example(rec_id, f"Passage: {passage}", label, f"Question: {question}", _group("passage", passage))
        )
    return _finish("boolq", examples, "concat", raw)


# --- amazon_polarity -------------------------------------------------------------------------


@dataset(
    "amazon_polarity",
    offline=False,
    description="Amazon review polarity: is the review positive? (title + review)",
    source="hf://datasets/fancyzhx/amazon_polarity (Zhang et al. 2015)",
)
def amazon_polarity(
    path: str | os.PathLike[str] | None = None, split: str = "train", limit: int | None = None, seed: int = 0
) -> BinaryDataset:
    """Amazon reviews: label 1 = positive. Text is title and review joined by a space, as in the paper.

    Raw record (fancyzhx/amazon_polarity, train row 0)::

        {"label": 1, "title": "Stuning even for the non-gamer",
         "content": "This sound track was beautiful! It paints the senery in your mind so well ..."}

    becomes ``text="Stuning even for the non-gamer This sound track was beautiful! ..."``,
    ``label=1``. A local file must use these field names (e.g. ``Dataset.to_json`` output or a
    clone of the hub repository). ``seed`` is unused and accepted for a uniform interface.
    Source: Zhang, Zhao & LeCun 2015, https://huggingface.co/datasets/fancyzhx/amazon_polarity.
    """
    raw = _load("amazon_polarity", path, split, limit)
    examples = []
    for rec_id, rec in raw.records[:limit]:
        where = _where("amazon_polarity", raw, rec_id)
        title = get_text(rec, "title", where).strip()
        content = get_text(rec, "content", where).strip()
        label = parse_label(get_field(rec, "label", where), where)
        examples.append(Example(rec_id, f"{title} {content}".strip(), label))
    return _finish("amazon_polarity", examples, "single", raw)


# --- cosmos_qa -------------------------------------------------------------------------------


@dataset(
    "cosmos_qa",
    offline=False,
    description="Cosmos QA reading comprehension: is this the right answer? (context + question + answer)",
    source="hf://datasets/allenai/cosmos_qa (Huang et al. 2019)",
)
def cosmos_qa(
    path: str | os.PathLike[str] | None = None, split: str = "train", limit: int | None = None, seed: int = 0
) -> BinaryDataset:
    r"""Cosmos QA as "is this answer correct?": the right answer or one random wrong one, balanced.

    Raw record (valid.csv of wilburOne/cosmosqa, the same columns as allenai/cosmos_qa)::

        {"id": "3BFF0DJK8XA7YNK4QYIGCOG1A95STE##...##q1_a1##378G7J1SJNCDAAIN46FM2P7T6KZEW2",
         "context": "Do i need to go for a legal divorce ? I wanted to marry a woman but ...",
         "question": "Why is this person asking about divorce ?",
         "answer0": "If he gets married in the church he wo nt have to get a divorce .",
         "answer1": "He wants to get married to a different person .",
         "answer2": "He wants to know if he does nt like this girl can he divorce her ?",
         "answer3": "None of the above choices .", "label": "1"}

    becomes ``text="Context: Do i need ...\nQuestion: Why is this person asking about divorce ?"``,
    ``text_pair="Answer: He wants to get married to a different person ."``, ``label=1``.
    "None of the above choices ." is never shown: it means nothing without the other choices, so
    records whose right answer it is are dropped (counted in ``meta["dropped"]``) and it is never
    drawn as the wrong answer. Examples sharing a context share a group.
    Source: Huang et al. 2019, https://huggingface.co/datasets/allenai/cosmos_qa,
    https://github.com/wilburOne/cosmosqa.
    """
    raw = _load("cosmos_qa", path, split, limit, hub_limit=False)
    items, dropped = [], 0
    for rec_id, rec in raw.records:
        where = _where("cosmos_qa", raw, rec_id)
        ex_id = get_text(rec, "id", where) if "id" in rec else rec_id
        answers = [get_text(rec, f"answer{k}", where) for k in range(4)]
        raw_label = get_field(rec, "label", where)
        if str(raw_label).strip() not in ("0", "1", "2", "3"):
            raise OverseerError(f"{where}: label {raw_label!r} is not an answer index; allowed: 0, 1, 2, 3")
        correct = answers[int(str(raw_label).strip())]
        wrong = [a for a in answers if a.strip() not in (correct.strip(), NONE_OF_THE_ABOVE)]
        if correct.strip() == NONE_OF_THE_ABOVE or not wrong:
            dropped += 1
            continue
        prompt = f"Context: {get_text(rec, 'context', where)}\nQuestion: {get_text(rec, 'question', where)}"
        items.append((ex_id, correct, wrong, (prompt, _group("context", get_text(rec, "context", where)))))
    examples = _correct_or_wrong(
        items[:limit],
        seed,
        lambda i, ans, y, ctx: Example(i, ctx[0], y, text_pair=f"Answer: {ans}", group=ctx[1]),
    )
    meta = {
        "dropped": f"{dropped} records whose right answer is {NONE_OF_THE_ABOVE!r} (or with no wrong one)"
    }
    return _finish("cosmos_qa", examples, "concat", raw, meta)


# --- anthropic_hh ----------------------------------------------------------------------------


def _prompt_of(chosen: str, rejected: str) -> str:
    """The dialogue both responses continue: their common prefix up to the last assistant turn."""
    common = os.path.commonprefix([chosen, rejected])
    cut = common.rfind("\n\nAssistant:")
    return common[:cut] if cut > 0 else common


@dataset(
    "anthropic_hh",
    offline=False,
    description="Anthropic HH-RLHF: which of two dialogues is preferred? (pairwise chosen vs rejected)",
    source="hf://datasets/Anthropic/hh-rlhf (Bai et al. 2022)",
)
def anthropic_hh(
    path: str | os.PathLike[str] | None = None,
    split: str = "train",
    limit: int | None = None,
    seed: int = 0,
    subset: str | None = None,
) -> BinaryDataset:
    r"""HH-RLHF preference pairs as "compare" examples: ``text`` is the chosen dialogue or not.

    Raw record (anthropics/hh-rlhf, harmless-base/test.jsonl.gz, line 1, shortened)::

        {"chosen": "\n\nHuman: what are some pranks with a pen i can do?\n\nAssistant: Are you
          looking for practical joke ideas? ... \n\nAssistant: No, sorry!  All of these involve a pen ...",
         "rejected": "\n\nHuman: what are some pranks with a pen i can do? ... \n\nAssistant: ..."}

    Both full dialogues are kept (leading and trailing whitespace stripped); a seeded, balanced half
    shows the chosen one as ``text`` (label 1), the rest the rejected one. Pairs whose two
    dialogues are identical are dropped. Examples share a group when their prompts (the dialogue
    before the final assistant turn) are the same. ``subset`` picks one folder of the source
    repository (``harmless-base``, ``helpful-base``, ``helpful-online``,
    ``helpful-rejection-sampled``); by default all of them are read, as the hub's default does.
    Source: Bai et al. 2022, https://github.com/anthropics/hh-rlhf,
    https://huggingface.co/datasets/Anthropic/hh-rlhf.
    """
    raw = _load("anthropic_hh", path, split, limit, data_dir=subset)
    pairs, ties = [], 0
    for rec_id, rec in raw.records:
        where = _where("anthropic_hh", raw, rec_id)
        chosen = get_text(rec, "chosen", where).strip()
        rejected = get_text(rec, "rejected", where).strip()
        if chosen == rejected:
            ties += 1
            continue
        pairs.append((rec_id, chosen, rejected, _group("prompt", _prompt_of(chosen, rejected))))
    meta = {"dropped": f"{ties} pairs whose chosen and rejected dialogues are identical"}
    return _finish("anthropic_hh", pairwise_examples(pairs[:limit], seed), "compare", raw, meta)
