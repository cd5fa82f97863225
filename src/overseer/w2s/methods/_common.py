"""Small helpers that several methods share: subsets of a split and seeded partitions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from overseer.errors import OverseerError
from overseer.w2s.splits import UnlabeledSplit


def take(split: UnlabeledSplit, idx: Sequence[int] | np.ndarray, tag: str) -> UnlabeledSplit:
    """The examples of ``split`` at positions ``idx``, still without labels, named ``split.name[tag]``."""
    idx = [int(i) for i in idx]
    pairs = None if split.text_pairs is None else tuple(split.text_pairs[i] for i in idx)
    return UnlabeledSplit(
        f"{split.name}[{tag}]",
        tuple(split.ids[i] for i in idx),
        tuple(split.texts[i] for i in idx),
        pairs,
    )


def partition(n: int, parts: int, seed: int) -> list[np.ndarray]:
    """Split positions ``0..n-1`` into ``parts`` disjoint, sorted chunks of near-equal size, shuffled by ``seed``.

    >>> [len(c) for c in partition(10, 3, seed=0)]
    [4, 3, 3]
    """
    if parts < 1:
        raise OverseerError(f"cannot split into {parts} parts; need at least 1")
    if n < parts:
        raise OverseerError(f"cannot split {n} examples into {parts} non-empty parts; label more examples (--n-label)")
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(chunk) for chunk in np.array_split(order, parts)]


def check_fraction(name: str, value: float) -> None:
    """Refuse a fraction outside [0, 1] with a message naming the method argument."""
    if not 0.0 <= value <= 1.0:
        raise OverseerError(f"{name} must be in [0, 1]; got {value}")
