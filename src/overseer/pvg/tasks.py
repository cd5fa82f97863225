"""The game's verifiable tasks at three sizes, as the data layer's samples.

Every task gives :class:`~overseer.data.Sample` records with the problem as ``input``, the final
answer's text as ``target``, a stable ``id`` and a reference solution in ``metadata["solution"]``
that ends with ``Answer: <number>`` (the warm-up data); solutions are checked by exact numeric
match of that final answer (:func:`overseer.pvg.toy.is_correct`).

- ``toy``: digit chains mod 10 (:mod:`overseer.pvg.toy`), generated;
- ``arith``: one- and two-step arithmetic word problems, generated here (the small-model tier);
- ``gsm8k``: grade-school math from the hub (``openai/gsm8k``) or a local copy (``data_path``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from overseer._registry import register
from overseer.data import Sample
from overseer.errors import OverseerError
from overseer.pvg.toy import correct_solution, fact_lines, make_problems


@dataclass(frozen=True)
class TaskData:
    """Problems of one task and seed: warm-up, prover, verifier and test parts, no prompt in two."""

    warmup: list[Sample]
    prover: list[Sample]
    verifier: list[Sample]
    test: list[Sample]

    def parts(self) -> dict[str, list[Sample]]:
        """The four parts by name."""
        return {"warmup": self.warmup, "prover": self.prover, "verifier": self.verifier, "test": self.test}


def split_parts(problems: list[Sample], n_warmup: int, shares: tuple[float, ...], seed: int) -> TaskData:
    """The first ``n_warmup`` problems for warm-up; the rest split at random by ``shares`` (prover, verifier, test)."""
    seen: set[str] = set()
    for p in problems:
        key = p.input if isinstance(p.input, str) else repr(p.input)
        if key in seen:
            raise OverseerError(f"problem {key[:80]!r} appears twice; a game needs distinct prompts")
        seen.add(key)
    warmup, rest = problems[:n_warmup], problems[n_warmup:]
    if len(rest) < 3:
        raise OverseerError(f"only {len(rest)} problems are left after {n_warmup} warm-up problems; need at least 3")
    sizes = [int(round(s * len(rest))) for s in shares[:2]]
    order = np.random.default_rng(seed).permutation(len(rest))
    cut1, cut2 = sizes[0], sizes[0] + sizes[1]
    pick = [sorted(order[:cut1]), sorted(order[cut1:cut2]), sorted(order[cut2:])]
    prover, verifier, test = ([rest[i] for i in idx] for idx in pick)
    for name, part in (("prover", prover), ("verifier", verifier), ("test", test)):
        if not part:
            raise OverseerError(f"the {name} split is empty; raise n_problems or its share in split")
    return TaskData(warmup, prover, verifier, test)


TaskLoader = Callable[[int, int, str | None], list[Sample]]
"""``(n, seed, data_path) -> n distinct problems``, the first ones for warm-up."""


@register("pvg_task", "toy")
def toy_problems(n: int, seed: int, data_path: str | None = None) -> list[Sample]:
    """``n`` digit chains mod 10 of 2-4 steps (:func:`overseer.pvg.toy.make_problems`)."""
    return [
        Sample(input=p.prompt, target=str(p.answer), id=p.id,
               metadata={"solution": correct_solution(p), "steps": len(p.steps)})
        for p in make_problems(n, (2, 4), seed=seed)
    ]


_NAMES = ("Ana", "Ben", "Chen", "Dara", "Eli", "Farah", "Gus", "Hana", "Ivan", "Jo", "Kofi", "Lena", "Mai", "Noor")
_ITEMS = ("apples", "books", "coins", "pencils", "stamps", "marbles", "cards", "shells", "eggs", "stickers")


def _word_problem(rng: np.random.Generator) -> tuple[str, list[str], int]:
    """One generated word problem: (text, solution lines, answer)."""
    name = _NAMES[int(rng.integers(len(_NAMES)))]
    item = _ITEMS[int(rng.integers(len(_ITEMS)))]
    kind = int(rng.integers(5))
    a, b = int(rng.integers(2, 30)), int(rng.integers(2, 20))
    if kind == 0:
        return (f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?",
                [f"{a} + {b} = {a + b}"], a + b)
    if kind == 1:
        a = a + b
        return (f"{name} has {a} {item} and gives away {b}. How many {item} does {name} have left?",
                [f"{a} - {b} = {a - b}"], a - b)
    if kind == 2:
        a, b = int(rng.integers(2, 10)), int(rng.integers(2, 10))
        return (f"{name} buys {a} boxes with {b} {item} in each. How many {item} does {name} buy?",
                [f"{a} * {b} = {a * b}"], a * b)
    c = int(rng.integers(1, a + b))
    if kind == 3:
        return (f"{name} has {a} {item}, gets {b} more, then gives away {c}. How many {item} are left?",
                [f"{a} + {b} = {a + b}", f"{a + b} - {c} = {a + b - c}"], a + b - c)
    k = int(rng.integers(2, 6))
    return (f"{name} has {a} {item} and buys {k} bags of {b} {item}. How many {item} does {name} have now?",
            [f"{k} * {b} = {k * b}", f"{a} + {k * b} = {a + k * b}"], a + k * b)


@register("pvg_task", "arith")
def arith_problems(n: int, seed: int, data_path: str | None = None) -> list[Sample]:
    """``n`` distinct one- and two-step word problems (add, subtract, multiply; answers 0-300)."""
    rng = np.random.default_rng(seed)
    out: list[Sample] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise OverseerError(f"cannot draw {n} distinct arith problems; ask for fewer")
        text, lines, answer = _word_problem(rng)
        if text in seen:
            continue
        seen.add(text)
        pid = "arith-" + hashlib.sha256(text.encode()).hexdigest()[:12]
        solution = "\n".join([*lines, f"Answer: {answer}"])
        out.append(Sample(input=text, target=str(answer), id=pid, metadata={"solution": solution, "steps": len(lines)}))
    return out


_GSM8K_FINAL = re.compile(r"^\s*####\s*(.+?)\s*$", re.MULTILINE)


@register("pvg_task", "gsm8k")
def gsm8k_problems(n: int, seed: int, data_path: str | None = None) -> list[Sample]:
    """``n`` GSM8K training problems, shuffled with ``seed``; reference solutions end ``Answer: <number>``."""
    from overseer.data.gsm8k import gsm8k

    data = gsm8k(path=data_path, split="train", calculator=False, limit=n, shuffle=True, seed=seed)
    if len(data) < n:
        raise OverseerError(f"gsm8k has {len(data)} training problems; n_problems + warmup_problems asks for {n}")
    return [
        Sample(input=s.input, target=s.target, id=s.id,
               metadata={"solution": _GSM8K_FINAL.sub(lambda m: f"Answer: {m.group(1)}", s.metadata["solution"])})
        for s in data
    ]


def load_task(name: str, n: int, seed: int, data_path: str | None = None) -> list[Sample]:
    """``n`` distinct problems of task ``name`` for ``seed`` (registered under ``pvg_task``)."""
    from overseer._registry import lookup

    loader: TaskLoader = lookup("pvg_task", name)
    return loader(n, seed, data_path)


def task_facts(name: str) -> list[str]:
    """Lines of the task's facts a tiny verifier's body is warm-started on (toy: its arithmetic table; else none)."""
    return fact_lines() if name == "toy" else []
