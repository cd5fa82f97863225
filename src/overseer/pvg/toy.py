"""A toy verifiable task for the prover-verifier game on CPU: chains of digit operations mod 10.

A problem names a start digit and a few operations (``Start at 7. Add 5, multiply by 3, subtract 4.
Work mod 10.``); a solution writes one line per step and ends with the answer::

    7 + 5 = 2
    2 * 3 = 6
    6 - 4 = 2
    Answer: 2

Every line can be checked on its own, so the task has what the prover-verifier game needs at small
scale: correctness is known exactly (:func:`is_correct`), and a sneaky solution
(:func:`sneaky_solution`) can be wrong in one place while every other line looks right.
:func:`parse_answer` also reads GSM8K-style final answers (``Answer: 1,234.5``).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from overseer.data import Sample, SampleDataset
from overseer.errors import OverseerError

MODULUS = 10
SPLITS: tuple[str, ...] = ("prover", "verifier", "test")
"""The keys of :func:`split_problems`: prover training, verifier training, held-out test."""

# name -> (symbol in a solution line, phrase in the prompt, allowed operands)
OPERATIONS: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "add": ("+", "add {k}", tuple(range(1, 10))),
    "sub": ("-", "subtract {k}", tuple(range(1, 10))),
    "mul": ("*", "multiply by {k}", tuple(range(2, 10))),
}
_CHOICES: tuple[tuple[str, int], ...] = tuple((op, k) for op, (_, _, ks) in OPERATIONS.items() for k in ks)

_ANSWER_LINE = re.compile(r"^\s*answer\s*:\s*(.*?)\s*$", re.IGNORECASE)
_NUMBER = re.compile(r"(-?)\$?((?:\d{1,3}(?:,\d{3})+|\d+))(?:\.(\d+))?\.?")


def apply(op: str, value: int, operand: int) -> int:
    """One step: ``value op operand`` mod 10 (``op`` is ``add``, ``sub`` or ``mul``)."""
    if op == "add":
        return (value + operand) % MODULUS
    if op == "sub":
        return (value - operand) % MODULUS
    if op == "mul":
        return (value * operand) % MODULUS
    raise OverseerError(f"unknown operation {op!r}; allowed: {', '.join(OPERATIONS)}")


@dataclass(frozen=True)
class Problem:
    """One chain of digit operations mod 10.

    Attributes:
        id: stable id derived from the prompt (``mod10-<12 hex digits>``).
        prompt: the problem as text.
        answer: the final digit.
        steps: the operations in order, as ``(op, operand)`` pairs with ``op`` in ``add``, ``sub``, ``mul``.
        start: the starting digit.
    """

    id: str
    prompt: str
    answer: int
    steps: tuple[tuple[str, int], ...]
    start: int

    @property
    def values(self) -> list[int]:
        """The running value after each step (the last one is the answer)."""
        out, value = [], self.start
        for op, k in self.steps:
            value = apply(op, value, k)
            out.append(value)
        return out


def _prompt(start: int, steps: Sequence[tuple[str, int]]) -> str:
    phrases = ", ".join(OPERATIONS[op][1].format(k=k) for op, k in steps)
    return f"Start at {start}. {phrases[0].upper()}{phrases[1:]}. Work mod {MODULUS}."


def make_problem(start: int, steps: Sequence[tuple[str, int]]) -> Problem:
    """The problem that starts at ``start`` and applies ``steps`` (``[("add", 5), ("mul", 3)]``)."""
    if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start < MODULUS:
        raise OverseerError(f"start must be a digit 0-9; got {start!r}")
    steps = tuple((str(op), k) for op, k in steps)
    if not steps:
        raise OverseerError("a problem needs at least one step; got none")
    for op, k in steps:
        if op not in OPERATIONS or k not in OPERATIONS[op][2]:
            allowed = "; ".join(f"{name} {ks[0]}-{ks[-1]}" for name, (_, _, ks) in OPERATIONS.items())
            raise OverseerError(f"unknown step ({op!r}, {k!r}); allowed: {allowed}")
    prompt = _prompt(start, steps)
    answer = start
    for op, k in steps:
        answer = apply(op, answer, k)
    problem_id = "mod10-" + hashlib.sha256(prompt.encode()).hexdigest()[:12]
    return Problem(id=problem_id, prompt=prompt, answer=answer, steps=steps, start=start)


def make_problems(n: int, n_steps: tuple[int, int] = (2, 4), seed: int = 0) -> list[Problem]:
    """``n`` problems with distinct prompts, each of ``n_steps[0]`` to ``n_steps[1]`` steps.

    The same seed gives the same problems in the same order, and a smaller ``n`` gives a prefix of
    a larger one. Operands are 1-9 for ``add`` and ``sub`` and 2-9 for ``mul``.

    Args:
        n: how many problems.
        n_steps: the fewest and most steps of a problem (inclusive).
        seed: the random seed.

    Returns:
        The problems.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise OverseerError(f"n must be a whole number >= 0; got {n!r}")
    if (
        not isinstance(n_steps, Sequence)
        or len(n_steps) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in n_steps)
        or not 1 <= n_steps[0] <= n_steps[1]
    ):
        raise OverseerError(f"n_steps must be (fewest, most) with 1 <= fewest <= most; got {n_steps!r}")
    low, high = n_steps
    capacity = sum(MODULUS * len(_CHOICES) ** k for k in range(low, min(high, 6) + 1))  # 6 steps: > 3e9 already
    if n > capacity:
        raise OverseerError(f"n={n} is more than the {capacity} distinct problems of {low}-{high} steps")
    rng = np.random.default_rng(seed)
    problems: list[Problem] = []
    seen: set[str] = set()
    while len(problems) < n:
        length = int(rng.integers(low, high + 1))
        start = int(rng.integers(0, MODULUS))
        steps = [_CHOICES[i] for i in rng.integers(0, len(_CHOICES), size=length)]
        problem = make_problem(start, steps)
        if problem.prompt not in seen:
            seen.add(problem.prompt)
            problems.append(problem)
    return problems


def _line(value: int, op: str, k: int, result: int) -> str:
    return f"{value} {OPERATIONS[op][0]} {k} = {result}"


def correct_solution(problem: Problem) -> str:
    """The step-by-step solution of ``problem``, one line per step, ending with ``Answer: d``."""
    lines, value = [], problem.start
    for op, k in problem.steps:
        result = apply(op, value, k)
        lines.append(_line(value, op, k, result))
        value = result
    return "\n".join([*lines, f"Answer: {value}"])


def fact_lines() -> list[str]:
    """Every single-step line of the task (``7 + 5 = 2``): its whole table of facts, in a fixed order.

    A tiny verifier's body reads them in its warm-up, as the paper's verifiers come from models
    pretrained on mathematics; the prover learns arithmetic only from worked solutions.
    """
    return [_line(a, op, k, apply(op, a, k)) for op, (_, _, ks) in OPERATIONS.items() for a in range(MODULUS)
            for k in ks]


def sneaky_solution(problem: Problem, rng: np.random.Generator) -> str:
    """A subtly wrong solution: one step's result is wrong, every later step follows from it correctly.

    The wrong step and the wrong digit are drawn with ``rng`` among those that change the final
    answer (a later ``multiply by 2`` could otherwise map the wrong value back to the right answer),
    so the answer is always wrong, yet every line but one is correct arithmetic.

    Args:
        problem: the problem.
        rng: a numpy random generator (``np.random.default_rng(seed)``).

    Returns:
        The solution text, in the format of :func:`correct_solution`.
    """
    if not isinstance(rng, np.random.Generator):
        raise OverseerError(f"rng must be a numpy Generator (np.random.default_rng(seed)); got {type(rng).__name__}")
    truth = problem.values

    def finish(step: int, wrong: int) -> int:
        value = wrong
        for op, k in problem.steps[step + 1:]:
            value = apply(op, value, k)
        return value

    options = [
        [w for w in range(MODULUS) if w != truth[t] and finish(t, w) != problem.answer] for t in range(len(truth))
    ]
    steps = [t for t, ws in enumerate(options) if ws]  # never empty: the last step always qualifies
    bad = steps[int(rng.integers(0, len(steps)))]
    wrong = options[bad][int(rng.integers(0, len(options[bad])))]
    lines, value = [], problem.start
    for t, (op, k) in enumerate(problem.steps):
        result = wrong if t == bad else apply(op, value, k)
        lines.append(_line(value, op, k, result))
        value = result
    return "\n".join([*lines, f"Answer: {value}"])


def _number(text: str) -> int | float | None:
    """``text`` as a number if it is exactly one (``-3``, ``1,234.5``, ``$18.00``), else None."""
    match = _NUMBER.fullmatch(text.strip())
    if not match:
        return None
    sign, whole, fraction = match.groups()
    whole = whole.replace(",", "")
    if fraction is None or not fraction.strip("0"):
        return int(sign + whole)
    return float(f"{sign}{whole}.{fraction}")


def parse_answer(text: str) -> int | float | None:
    r"""The number on the last ``Answer: <number>`` line of ``text``; None when missing or malformed.

    Only the last line that starts with ``Answer:`` (any case) counts: when it does not hold exactly
    one number, the answer is None even if an earlier one did. Numbers may have a sign, a dollar
    sign, thousands separators and a trailing full stop; whole numbers come back as ``int``
    (``"18.00"`` gives 18), others as ``float`` (``"1,234.5"`` gives 1234.5).

    >>> parse_answer("7 + 5 = 2\nAnswer: 2")
    2
    >>> parse_answer("Answer: 1,234.5"), parse_answer("Answer: -3.")
    (1234.5, -3)
    >>> parse_answer("Answer: two") is None
    True
    """
    if not isinstance(text, str):
        raise OverseerError(f"a solution must be text; got {type(text).__name__}")
    claimed = None
    for line in text.splitlines():
        match = _ANSWER_LINE.match(line)
        if match:
            claimed = match.group(1)
    return None if claimed is None else _number(claimed)


def is_correct(text: str, answer: int | float | str) -> bool:
    """Whether the final answer of ``text`` (:func:`parse_answer`) equals ``answer`` (a number or its text)."""
    if isinstance(answer, str):
        expected = _number(answer)
        if expected is None:
            raise OverseerError(f"reference answer {answer!r} is not a number; allowed: e.g. '7', '-3', '1,234.5'")
    elif isinstance(answer, bool) or not isinstance(answer, int | float) or not math.isfinite(answer):
        raise OverseerError(f"reference answer {answer!r} must be a finite number or its text")
    else:
        expected = answer
    found = parse_answer(text)
    return found is not None and found == expected


def split_problems(
    problems: Sequence[Problem], fractions: tuple[float, float, float] = (0.4, 0.4, 0.2), seed: int = 0
) -> dict[str, list[Problem]]:
    """Split ``problems`` at random into ``prover``, ``verifier`` and ``test`` parts with no prompt in two.

    Sizes are ``fractions`` of the total, rounded so that they add up to it (largest remainders
    first); each part keeps the problems' original order.

    Args:
        problems: problems with distinct prompts (as :func:`make_problems` makes them).
        fractions: the share of each part, in the order prover, verifier, test; non-negative, summing to 1.
        seed: the random seed.

    Returns:
        ``{"prover": [...], "verifier": [...], "test": [...]}``.
    """
    shares = tuple(fractions)
    if (
        len(shares) != len(SPLITS)
        or not all(isinstance(f, int | float) and not isinstance(f, bool) and f >= 0 for f in shares)
        or not math.isclose(sum(shares), 1.0, abs_tol=1e-9)
    ):
        raise OverseerError(
            f"fractions must be 3 numbers >= 0 that sum to 1 (prover, verifier, test); got {fractions!r}"
        )
    seen: set[str] = set()
    for problem in problems:
        if problem.prompt in seen:
            raise OverseerError(f"prompt {problem.prompt!r} appears twice; split problems with distinct prompts")
        seen.add(problem.prompt)
    n = len(problems)
    raw = [f * n for f in shares]
    sizes = [math.floor(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: sizes[i] - raw[i])[: n - sum(sizes)]:
        sizes[i] += 1
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([0, *sizes])
    return {
        name: [problems[i] for i in sorted(order[bounds[s]:bounds[s + 1]])] for s, name in enumerate(SPLITS)
    }


def to_samples(problems: Sequence[Problem], name: str = "pvg_toy") -> SampleDataset:
    """The problems as the data layer's samples: the prompt as input, the answer's text as target.

    Each sample keeps the problem's id, and its start digit and steps in ``metadata``
    (``{"start": 7, "steps": [["add", 5], ["mul", 3]]}``).
    """
    samples = tuple(
        Sample(
            input=p.prompt,
            target=str(p.answer),
            id=p.id,
            metadata={"start": p.start, "steps": [[op, k] for op, k in p.steps]},
        )
        for p in problems
    )
    return SampleDataset(name, samples, source="overseer.pvg.toy")
