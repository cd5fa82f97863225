import dataclasses

import numpy as np
import pytest

from overseer.data import Example, make_dataset
from overseer.errors import OverseerError
from overseer.w2s.splits import UnlabeledSplit, split_dataset, w2s_splits


def _dataset(n_groups: int = 300, positive_share: float = 0.5):
    examples = []
    rng = np.random.default_rng(0)
    for g in range(n_groups):
        label = int(rng.random() < positive_share)
        examples.append(Example(id=f"{g}a", text=f"text {g} a", label=label, group=str(g)))
        examples.append(Example(id=f"{g}b", text=f"text {g} b", label=1 - label, group=str(g)))
    return make_dataset("toy", examples)


def test_splits_are_disjoint_balanced_and_keep_groups_together() -> None:
    splits = w2s_splits(_dataset(), n_train=200, n_test=100, seed=3)
    ids = [set(splits.weak_train.ids), set(splits.weak_label.ids), set(splits.test.ids)]
    assert all(not (a & b) for i, a in enumerate(ids) for b in ids[i + 1 :])
    groups = [{i[:-1] for i in s} for s in ids]
    assert all(not (a & b) for i, a in enumerate(groups) for b in groups[i + 1 :])
    assert splits.weak_train.labels.mean() == 0.5 and splits.test.labels.mean() == 0.5
    assert len(splits.weak_label) == 200 and splits.weak_label_truth_for_metrics().mean() == 0.5


def test_splits_are_deterministic_per_seed() -> None:
    ds = _dataset()
    a, b, c = (w2s_splits(ds, 100, 50, seed=s) for s in (1, 1, 2))
    assert a.weak_train.ids == b.weak_train.ids and a.test.ids == b.test.ids
    assert a.weak_train.ids != c.weak_train.ids


def test_student_split_has_no_labels() -> None:
    splits = w2s_splits(_dataset(), 100, 50)
    assert type(splits.weak_label) is UnlabeledSplit
    assert "labels" not in {f.name for f in dataclasses.fields(splits.weak_label)}
    truth = splits.weak_label_truth_for_metrics()
    truth[:] = 7  # a copy: callers cannot corrupt the held-out truth
    assert set(splits.weak_label_truth_for_metrics()) <= {0, 1}


def test_balancing_downsamples_the_majority_class() -> None:
    examples = [Example(id=str(i), text=str(i), label=int(i % 4 != 0)) for i in range(400)]  # 75% positive
    (split,) = split_dataset(make_dataset("skewed", examples), [100])
    assert split.labels.mean() == 0.5


def test_too_small_dataset_is_a_clear_error() -> None:
    with pytest.raises(OverseerError, match="too small for splits of \\[300, 300, 100\\]: it has 600 examples"):
        w2s_splits(_dataset(300), n_train=300, n_test=100)
