r"""GSM8K (Cobbe et al. 2021): grade-school math word problems whose answer is one number.

Source: "Training Verifiers to Solve Math Word Problems", https://arxiv.org/abs/2110.14168; data
from https://github.com/openai/grade-school-math (``grade_school_math/data/{train,test}.jsonl``,
MIT licence) or the hub copy https://huggingface.co/datasets/openai/gsm8k (configuration ``main``;
``socratic`` adds sub-questions to the solutions). A raw record (``test.jsonl``, line 1)::

    {"question": "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and
      bakes muffins for her friends every day with four. She sells the remainder at the farmers'
      market daily for $2 per fresh duck egg. How much in dollars does she make every day at the
      farmers' market?",
     "answer": "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 =
      $<<9*2=18>>18 every day at the farmer’s market.\n#### 18"}

becomes ``Sample(input="Janet’s ducks lay ...", target="18", id="test-0",
metadata={"solution": "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs ... #### 18"})``.

The ``<<16-3-4=9>>`` spans are calculator annotations: during sampling, the paper's models handed
the expression to a calculator, and the text after ``>>`` is the result. ``calculator=False`` removes
them from the solution. The final answer is the number after the last ``####``; as in the reference
code of the source repository (``grade_school_math/dataset.py``), thousands separators are dropped
("1,000" becomes "1000"). :func:`extract_answer` reads the same kind of number out of a model's
free-text answer, so that a prediction and a target compare as strings.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from overseer.data._files import check_limit, get_text, read_split
from overseer.data._registry import sample_dataset
from overseer.data._sample import Sample, SampleDataset
from overseer.data._sources import hub_source, hub_split, pick_indices
from overseer.errors import OverseerError

__all__ = [
    "GSM8K_CONFIGS",
    "GSM8K_REPO",
    "GSM8K_REVISION",
    "GSM8K_SPLITS",
    "extract_answer",
    "final_answer",
    "gsm8k",
    "normalize_number",
    "strip_calculator",
]

GSM8K_REPO = "openai/gsm8k"
# A commit of the hub repository's ``main`` branch (parquet files for both configurations); the
# same revision inspect_evals pins for its GSM8K task.
GSM8K_REVISION = "cc7b047b6e5bb11b4f1af84efc572db110a51b3c"
GSM8K_CONFIGS: tuple[str, ...] = ("main", "socratic")
GSM8K_SPLITS: tuple[str, ...] = ("train", "test")

_CALCULATOR = re.compile(r"<<[^<>]*>>")
_PLAIN_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
# A number inside free text: not glued to a word or to a decimal point before it ("v2", ".5");
# thousands separators only in groups of three, so "1,2,3" is three numbers.
_NUMBER_IN_TEXT = re.compile(r"(?<![\w.])-?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\d)")


def normalize_number(text: str) -> str | None:
    """A number written one canonical way, or None when ``text`` is not just a number.

    Drops surrounding space, a dollar sign, a trailing full stop, thousands separators, leading
    zeros and trailing decimal zeros; keeps the sign and real decimals.

    >>> normalize_number("1,000")
    '1000'
    >>> normalize_number(" -3 ")
    '-3'
    >>> normalize_number("$2.50")
    '2.5'
    >>> normalize_number("18.00.")
    '18'
    >>> normalize_number("12 apples") is None
    True
    """
    s = text.strip().rstrip(".").replace("$", "")
    if not _PLAIN_NUMBER.fullmatch(s):
        return None
    sign = "-" if s.startswith("-") else ""
    whole, _, frac = s.lstrip("-").replace(",", "").partition(".")
    whole = whole.lstrip("0") or "0"
    frac = frac.rstrip("0")
    number = f"{whole}.{frac}" if frac else whole
    return "0" if number == "0" else sign + number


def final_answer(solution: str) -> str | None:
    r"""The final answer of a reference solution: the number after its last ``####``, or None.

    >>> final_answer("48/2 = <<48/2=24>>24 clips in May.\n#### 72")
    '72'
    >>> final_answer("... so 1,000 - 1,010 = <<1000-1010=-10>>-10\n#### -10")
    '-10'
    >>> final_answer("#### 1,250")
    '1250'
    >>> final_answer("no marker, so no answer: 5") is None
    True
    """
    if "####" not in solution:
        return None
    return normalize_number(solution.rsplit("####", 1)[1])


def strip_calculator(solution: str) -> str:
    """``solution`` without its calculator annotations.

    >>> strip_calculator("She makes 9 * 2 = $<<9*2=18>>18 every day.")
    'She makes 9 * 2 = $18 every day.'
    """
    return _CALCULATOR.sub("", solution)


def extract_answer(text: str) -> str | None:
    r"""The final number of a model's free-text answer, normalised like the targets; None if none.

    The first number after the last ``####`` when the text has one (the format of the reference
    solutions), else the last number in the text.

    >>> extract_answer("She sells 9 eggs at $2 each.\n#### 18")
    '18'
    >>> extract_answer("So the total comes to $1,250.50.")
    '1250.5'
    >>> extract_answer("The temperature drops 5-8 degrees, to -3.")
    '-3'
    >>> extract_answer("I am not sure.") is None
    True
    """
    if "####" in text:
        found = _NUMBER_IN_TEXT.search(text.rsplit("####", 1)[1])
        if found:
            return normalize_number(found.group())
    numbers = _NUMBER_IN_TEXT.findall(text)
    return normalize_number(numbers[-1]) if numbers else None


@sample_dataset(
    "gsm8k",
    offline=False,
    description="GSM8K grade-school math word problems: question -> final number (worked solution in metadata)",
    source=f"hf://datasets/{GSM8K_REPO}@{GSM8K_REVISION[:8]} (Cobbe et al. 2021), or path= to a local copy",
)
def gsm8k(
    path: str | os.PathLike[str] | None = None,
    split: str = "test",
    config: str = "main",
    calculator: bool = True,
    skip_invalid: bool = False,
    limit: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
) -> SampleDataset:
    """GSM8K as samples: the question, the final number as target, the solution in ``metadata``.

    Args:
        path: a local copy instead of the hub: a jsonl file of records with ``question`` and
            ``answer`` (e.g. ``grade_school_math/data/test.jsonl``), or a folder holding
            ``<split>.jsonl`` (or a clone of the hub repository, whose ``<config>/`` folder is read).
        split: "train" (7,473 problems) or "test" (1,319); only names the data when ``path`` is a file.
        config: the hub configuration, "main" or "socratic".
        calculator: keep the calculator annotations ``<<48/2=24>>`` in ``metadata["solution"]``
            (True) or remove them (False).
        skip_invalid: drop records whose answer has no parseable ``#### <number>`` (counted in
            ``meta["skipped"]``) instead of raising an error that counts them.
        limit: keep at most this many problems (after shuffling).
        shuffle: shuffle the problems with ``seed`` before applying ``limit``.
        seed: seeds the shuffle.

    Ids are ``<split>-<index in the split>`` (``<file stem>-<index>`` for a file), the same for the
    hub and for a local copy of it.
    """
    if split not in GSM8K_SPLITS:
        raise OverseerError(f"gsm8k: unknown split {split!r}; allowed: {', '.join(GSM8K_SPLITS)}")
    if config not in GSM8K_CONFIGS:
        raise OverseerError(f"gsm8k: unknown config {config!r}; allowed: {', '.join(GSM8K_CONFIGS)}")
    check_limit(limit)
    what = "sample dataset 'gsm8k'"
    if path is None:
        hint = "pass path= to a local copy (grade_school_math/data/ of openai/grade-school-math, or a clone of the hub)"
        table = hub_split(GSM8K_REPO, revision=GSM8K_REVISION, split=split, config=config, what=what, hint=hint)
        records = [(f"{split}-{i}", rec) for i, rec in enumerate(table.to_list())]
        source = hub_source(GSM8K_REPO, GSM8K_REVISION, split, config)
    else:
        root = Path(path).expanduser()
        subset = config if root.is_dir() and (root / config).is_dir() else None
        records, source = read_split(path, split, subset, what=what)
        if root.is_dir():  # number across the split's files, as the hub does
            records = [(f"{split}-{i}", rec) for i, (_, rec) in enumerate(records)]

    samples, invalid = [], []
    for rec_id, rec in records:
        where = f"gsm8k record {rec_id!r} of {source!r}"
        question = get_text(rec, "question", where)
        solution = get_text(rec, "answer", where)
        target = final_answer(solution)
        if target is None:
            invalid.append(f"{rec_id!r} (answer ends {solution[-40:]!r})")
            continue
        text = solution if calculator else strip_calculator(solution)
        samples.append(Sample(input=question, target=target, id=rec_id, metadata={"solution": text}))
    meta = {}
    if invalid:
        if not skip_invalid:
            raise OverseerError(
                f"gsm8k: {len(invalid)} of {len(records)} records of {source!r} have no final answer "
                f"'#### <number>', e.g. {'; '.join(invalid[:2])}; fix them or pass skip_invalid=True"
            )
        meta["skipped"] = f"{len(invalid)} records without a final answer '#### <number>'"
    picked = [samples[i] for i in pick_indices(len(samples), limit, shuffle, seed)]
    return SampleDataset("gsm8k", tuple(picked), source, meta)
