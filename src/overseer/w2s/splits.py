"""Deterministic, class-balanced, group-aware splits for weak-to-strong experiments.

Burns et al. split the training data in two: the weak supervisor (and the strong ceiling) train
on the first half with ground truth; the weak supervisor labels the second half, on which the
strong student trains. The student must never see the second half's ground truth, so that split
is handed out only as an :class:`UnlabeledSplit`, a type that has no labels at all.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from overseer.data import BinaryDataset, Example
from overseer.errors import OverseerError


@dataclass(frozen=True)
class UnlabeledSplit:
    """Examples without their labels: all the student may see of its training split."""

    name: str
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    text_pairs: tuple[str, ...] | None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class LabeledSplit(UnlabeledSplit):
    """Examples with ground-truth labels (weak-train and test splits)."""

    labels: np.ndarray

    def without_labels(self) -> UnlabeledSplit:
        """The same examples with the labels removed."""
        return UnlabeledSplit(self.name, self.ids, self.texts, self.text_pairs)


@dataclass(frozen=True)
class W2SSplits:
    """The three disjoint splits of one seed.

    ``weak_label`` is deliberately unlabeled. Its ground truth is kept apart in
    ``_weak_label_truth`` and is readable only through the methods named for their one use:
    scoring weak labels once every model is trained, the noise-matched baseline's own job, and a
    synthetic weak supervisor (label noise on the truth). The student's job calls none of them.
    """

    weak_train: LabeledSplit
    weak_label: UnlabeledSplit
    test: LabeledSplit
    _weak_label_truth: np.ndarray

    def weak_label_truth_for_metrics(self) -> np.ndarray:
        """Ground truth of the student's split, for scoring weak labels only (never for training)."""
        return self._weak_label_truth.copy()

    def weak_label_truth_for_baseline(self) -> np.ndarray:
        """Ground truth of the student's split, for the noise-matched baseline's job only."""
        return self._weak_label_truth.copy()

    def weak_label_truth_for_synthetic_weak(self) -> np.ndarray:
        """Ground truth of the student's split, for a weak supervisor that is noise on the truth."""
        return self._weak_label_truth.copy()


def _to_split(name: str, examples: Sequence[Example]) -> LabeledSplit:
    has_pairs = any(ex.text_pair is not None for ex in examples)
    return LabeledSplit(
        name=name,
        ids=tuple(ex.id for ex in examples),
        texts=tuple(ex.text for ex in examples),
        text_pairs=tuple(ex.text_pair or "" for ex in examples) if has_pairs else None,
        labels=np.array([ex.label for ex in examples], dtype=np.int64),
    )


def split_dataset(
    dataset: BinaryDataset, sizes: Sequence[int], seed: int = 0, balance: bool = True
) -> list[LabeledSplit]:
    """Draw disjoint splits of the given sizes, each with equal classes when ``balance`` is set.

    Whole groups go to one split (examples without a group are their own group), groups are
    shuffled with ``seed``, and each split takes groups until it holds ``size/2`` of each class.
    Raises :class:`OverseerError` when the dataset is too small for the sizes asked for.
    """
    groups: dict[str, list[Example]] = defaultdict(list)
    for ex in dataset.examples:
        groups[ex.group if ex.group is not None else f"id:{ex.id}"].append(ex)
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    taken = [False] * len(order)
    splits = []
    for n in sizes:
        if n <= 0:
            raise OverseerError(f"split sizes must be positive; got {list(sizes)}")
        if balance:
            target = {0: n // 2, 1: n - n // 2}
        else:
            target = {0: n, 1: n}
        counts = {0: 0, 1: 0}
        chosen: list[Example] = []
        for i, key in enumerate(order):
            if taken[i]:
                continue
            members = groups[key]
            add = {0: 0, 1: 0}
            for ex in members:
                add[ex.label] += 1
            fits = all(counts[c] + add[c] <= target[c] for c in (0, 1))
            if fits and (balance or len(chosen) + len(members) <= n):
                taken[i] = True
                chosen.extend(members)
                counts = {c: counts[c] + add[c] for c in (0, 1)}
            if len(chosen) >= n:
                break
        if len(chosen) < n:
            labels = dataset.labels()
            raise OverseerError(
                f"dataset {dataset.name!r} is too small for splits of {list(sizes)}: it has "
                f"{len(labels)} examples ({labels.count(1)} positive, {labels.count(0)} negative)"
                f"{' and balanced splits need half of each class' if balance else ''}; "
                "lower --n-train/--n-test or give it more data"
            )
        random.Random(seed + len(splits) + 1).shuffle(chosen)
        splits.append(_to_split(f"split{len(splits)}", chosen))
    return splits


def w2s_splits(
    dataset: BinaryDataset, n_train: int, n_test: int, seed: int = 0, n_label: int | None = None
) -> W2SSplits:
    """Split ``dataset`` into weak-train (``n_train``), weak-label (``n_label``, default ``n_train``) and test."""
    weak_train, weak_label, test = split_dataset(dataset, [n_train, n_label or n_train, n_test], seed=seed)
    return W2SSplits(
        weak_train=LabeledSplit(
            "weak_train", weak_train.ids, weak_train.texts, weak_train.text_pairs, weak_train.labels
        ),
        weak_label=UnlabeledSplit("weak_label", weak_label.ids, weak_label.texts, weak_label.text_pairs),
        test=LabeledSplit("test", test.ids, test.texts, test.text_pairs, test.labels),
        _weak_label_truth=weak_label.labels,
    )
