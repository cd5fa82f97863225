"""The contract every audit technique follows, and its registry."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from overseer._registry import lookup, names, register
from overseer.errors import unknown
from overseer.organisms.game.bench import Bench
from overseer.organisms.game.field import Candidate, Verdict

Technique = Callable[[Sequence[Candidate], Bench], dict[str, Verdict]]
"""``technique(candidates, bench)``: a :class:`Verdict` per candidate id, from what the candidates and bench show.

A technique sees each candidate only as its anonymous id, a spec named by that id and its training rows;
it measures its evidence against ``bench.base`` and may leave notes for the run in ``bench.notes``.
"""


def game_technique(name: str) -> Callable[[Technique], Technique]:
    """Register an audit technique under ``name``, which ``--techniques`` then accepts."""
    return register("game_technique", name)


def find_technique(name: str) -> Technique:
    """The technique registered as ``name``; an unknown name is one line listing the registered ones."""
    if name not in technique_names():
        raise unknown("technique", name, technique_names())
    return lookup("game_technique", name)


def technique_names() -> list[str]:
    """Registered technique names, sorted."""
    return names("game_technique")
