"""BBQ (Parrish et al. 2022): three-option questions over ambiguous and disambiguated contexts.

Source: "BBQ: A Hand-Built Bias Benchmark for Question Answering", https://github.com/nyu-mll/BBQ
(``data/<Category>.jsonl``, CC-BY-4.0).

A raw record (``data/Age.jsonl`` in the BBQ repository, one JSON object per line)::

    {"example_id": 0, "question_index": "1", "question_polarity": "neg", "context_condition": "ambig",
     "category": "Age", "answer_info": {"ans0": ["grandfather", "old"], "ans1": ["grandson", "nonOld"],
     "ans2": ["Can't be determined", "unknown"]}, "additional_metadata": {"stereotyped_groups": ["old"], ...},
     "context": "I saw a grandson and their grandfather ...", "question": "Who was not comfortable using the phone?",
     "ans0": "The grandfather", "ans1": "The grandson", "ans2": "Can't be determined", "label": 2}

The stereotyped *target* is the option whose group (or, for Nationality, whose name) is listed in
``stereotyped_groups``; the *biased* answer is the target for a negative question and the other group
for a non-negative one. Works with whichever category files are present.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from overseer.data._registry import sample_dataset
from overseer.data._sample import Sample, SampleDataset
from overseer.data._sources import pick_indices
from overseer.errors import OverseerError, unknown

__all__ = [
    "REQUIRED",
    "BBQItem",
    "available_categories",
    "bbq",
    "item_to_sample",
    "load_bbq",
    "parse_record",
    "sample_bbq",
    "target_index",
]

REQUIRED = (
    "example_id", "question_index", "question_polarity", "context_condition", "category",
    "answer_info", "additional_metadata", "context", "question", "ans0", "ans1", "ans2", "label",
)  # fmt: skip
_TARGET_LETTERS = ("A", "B", "C")  # how sample targets name the options


@dataclass(frozen=True)
class BBQItem:
    """One BBQ question with what the metrics need: context type, polarity, target and UNKNOWN option."""

    uid: str
    category: str
    template: str
    polarity: str
    context_condition: str
    context: str
    question: str
    answers: tuple[str, str, str]
    label: int
    unknown_index: int
    target_index: int | None  # None when the stereotyped option cannot be told from the metadata

    @property
    def ambiguous(self) -> bool:
        """True for the ambiguous-context version (the correct answer is UNKNOWN)."""
        return self.context_condition == "ambig"


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def target_index(answer_info: dict[str, Any], stereotyped_groups: list[str]) -> int | None:
    """Index of the option naming the stereotyped group, from ``answer_info`` and the metadata.

    Matches the option's group label (``old``, ``lowSES``) or its name (Nationality lists
    nationalities such as ``British``), ignoring case and punctuation; compound labels such as
    ``F-Black`` are matched whole first, then by their parts. None when no rule picks exactly one.

    >>> info = {"ans0": ["grandfather", "old"], "ans1": ["grandson", "nonOld"], "ans2": ["Unknown", "unknown"]}
    >>> target_index(info, ["old"])
    0
    """
    wanted = {_norm(g) for g in stereotyped_groups}
    cands = [(k, info) for k, info in enumerate(answer_info[f"ans{i}"] for i in range(3))]
    cands = [(k, [str(x) for x in info]) for k, info in cands if _norm(str(info[1])) != "unknown"]

    def pick(keys: Any) -> int | None:
        hits = [k for k, info in cands if keys(info) & wanted]
        return hits[0] if len(hits) == 1 else None

    rules = (
        lambda info: {_norm(info[1])},
        lambda info: {_norm(info[0])},
        lambda info: {_norm(p) for p in re.split(r"[-_ ]", info[1]) if p},
    )
    for rule in rules:
        found = pick(rule)
        if found is not None:
            return found
    return None


def parse_record(raw: dict[str, Any], where: str) -> BBQItem:
    """Validate one raw record; a bad one raises a one-line error naming the file, line and field."""
    missing = [f for f in REQUIRED if f not in raw]
    if missing:
        raise OverseerError(f"BBQ record at {where} is missing field(s): {', '.join(missing)}")
    info = raw["answer_info"]
    meta = raw["additional_metadata"]
    if not isinstance(info, dict) or any(f"ans{i}" not in info or len(info[f"ans{i}"]) < 2 for i in range(3)):
        raise OverseerError(f"BBQ record at {where} has a malformed answer_info (needs ans0..ans2: [text, group])")
    if not isinstance(meta, dict) or "stereotyped_groups" not in meta:
        raise OverseerError(f"BBQ record at {where} is missing additional_metadata.stereotyped_groups")
    if raw["question_polarity"] not in ("neg", "nonneg"):
        raise OverseerError(f"BBQ record at {where} has question_polarity {raw['question_polarity']!r} (neg/nonneg)")
    if raw["context_condition"] not in ("ambig", "disambig"):
        raise OverseerError(f"BBQ record at {where} has context_condition {raw['context_condition']!r}")
    unknowns = [i for i in range(3) if _norm(str(info[f"ans{i}"][1])) == "unknown"]
    if len(unknowns) != 1:
        raise OverseerError(f"BBQ record at {where} does not have exactly one UNKNOWN option in answer_info")
    try:
        label = int(raw["label"])
    except (TypeError, ValueError):
        raise OverseerError(f"BBQ record at {where} has a non-integer label {raw['label']!r}") from None
    if label not in (0, 1, 2):
        raise OverseerError(f"BBQ record at {where} has label {label}; expected 0, 1 or 2")
    category = str(raw["category"])
    return BBQItem(
        uid=f"{category}/{raw['example_id']}",
        category=category,
        template=f"{category}/{raw['question_index']}",
        polarity=raw["question_polarity"],
        context_condition=raw["context_condition"],
        context=str(raw["context"]),
        question=str(raw["question"]),
        answers=(str(raw["ans0"]), str(raw["ans1"]), str(raw["ans2"])),
        label=label,
        unknown_index=unknowns[0],
        target_index=target_index(info, list(meta.get("stereotyped_groups") or [])),
    )


def available_categories(source: Path) -> list[str]:
    """Category names (file stems) present in a BBQ ``data/`` folder."""
    return sorted(p.stem for p in source.glob("*.jsonl"))


def load_bbq(source: str | Path, categories: tuple[str, ...] = ()) -> list[BBQItem]:
    """Read BBQ from a folder of ``<Category>.jsonl`` files, or ``hf:<dataset id>[@<revision>]`` from the hub.

    Items come category by category (in the order given, default: file names sorted), each in
    file order. ``@<revision>`` pins the hub dataset to a commit; without it the newest is read.
    """
    if str(source).startswith("hf:"):
        return _load_hub(str(source)[3:], categories)
    folder = Path(source)
    present = available_categories(folder) if folder.is_dir() else []
    if not present:
        raise OverseerError(f"no BBQ category files (*.jsonl) in {folder}; point --data-dir at a BBQ data/ clone")
    chosen = list(categories) or present
    for cat in chosen:
        if cat not in present:
            raise unknown("BBQ category", cat, present, f"files found in {folder}")
    items: list[BBQItem] = []
    for cat in chosen:
        path = folder / f"{cat}.jsonl"
        with path.open() as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError:
                    raise OverseerError(f"BBQ file {path} line {line_no} is not valid JSON") from None
                items.append(parse_record(raw, f"{path.name}:{line_no}"))
    return items


def _load_hub(dataset_id: str, categories: tuple[str, ...]) -> list[BBQItem]:
    """BBQ from a hub dataset with one config per category and the repository's fields (e.g. heegyu/bbq)."""
    dataset_id, _, rev = dataset_id.partition("@")
    revision = rev or None
    try:
        from datasets import get_dataset_config_names, load_dataset
    except ImportError as exc:  # pragma: no cover - datasets is a dependency
        raise OverseerError("loading BBQ from the hub needs the 'datasets' package") from exc
    try:
        present = get_dataset_config_names(dataset_id, revision=revision)
        chosen = list(categories) or present
        items: list[BBQItem] = []
        for cat in chosen:
            if cat not in present:
                raise unknown("BBQ category", cat, present, f"configs of {dataset_id}")
            for i, raw in enumerate(load_dataset(dataset_id, cat, split="test", revision=revision)):
                items.append(parse_record(dict(raw), f"{dataset_id}/{cat}#{i}"))
    except (OSError, ConnectionError, ValueError) as exc:
        raise OverseerError(f"cannot load BBQ from the hub dataset {dataset_id!r}: {str(exc).splitlines()[0]}") from exc
    return items


def sample_bbq(items: list[BBQItem], per_cell: int, seed: int) -> list[BBQItem]:
    """Up to ``per_cell`` items per category x context x polarity cell, spread evenly over templates.

    Within a cell, templates are visited round-robin in a seeded order, each contributing a seeded
    random variant per turn, so no template dominates a small sample.
    """
    rng = np.random.default_rng(seed)
    cells: dict[tuple[str, str, str], dict[str, list[BBQItem]]] = defaultdict(lambda: defaultdict(list))
    for item in items:
        cells[(item.category, item.context_condition, item.polarity)][item.template].append(item)
    chosen: list[BBQItem] = []
    for key in sorted(cells):
        by_template = cells[key]
        names = sorted(by_template)
        queues = {t: [by_template[t][i] for i in rng.permutation(len(by_template[t]))] for t in names}
        order = [names[i] for i in rng.permutation(len(names))]
        taken = 0
        while taken < per_cell and any(queues.values()):
            for t in order:
                if queues[t] and taken < per_cell:
                    chosen.append(queues[t].pop())
                    taken += 1
    return chosen


def item_to_sample(item: BBQItem) -> Sample:
    """One BBQ item as a multiple-choice sample: target "A", "B" or "C" names the correct option.

    The input is the context followed by the question; ``group`` is the template (category and
    question index), and ``metadata`` keeps what the bias metrics need.
    """
    return Sample(
        input=f"{item.context} {item.question}",
        target=_TARGET_LETTERS[item.label],
        choices=item.answers,
        id=item.uid,
        metadata={
            "category": item.category,
            "polarity": item.polarity,
            "context_condition": item.context_condition,
            "unknown_index": item.unknown_index,
            "target_index": item.target_index,
        },
        group=item.template,
    )


@sample_dataset(
    "bbq",
    offline=True,
    description="BBQ bias benchmark: three-option questions over ambiguous and disambiguated contexts",
    source="path= to the data/ folder of a nyu-mll/BBQ clone, or hf:<dataset id>[@<revision>] (Parrish et al. 2022)",
)
def bbq(
    path: str | os.PathLike[str] | None = None,
    categories: tuple[str, ...] = (),
    limit: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
) -> SampleDataset:
    """BBQ as multiple-choice samples (see :func:`item_to_sample`), read with :func:`load_bbq`.

    Args:
        path: a folder of ``<Category>.jsonl`` files, or ``"hf:<dataset id>[@<revision>]"``.
        categories: which categories to read (default: every file present).
        limit: keep at most this many items (after shuffling).
        shuffle: shuffle the items with ``seed`` before applying ``limit``.
        seed: seeds the shuffle.
    """
    if path is None:
        raise OverseerError("sample dataset 'bbq' needs path= (a BBQ data/ folder or 'hf:<dataset id>')")
    source = str(path) if str(path).startswith("hf:") else Path(path).expanduser()
    items = load_bbq(source, tuple(categories))
    picked = [item_to_sample(items[i]) for i in pick_indices(len(items), limit, shuffle, seed)]
    return SampleDataset("bbq", tuple(picked), str(source))
