"""Every registered method end to end, and each method's own behaviour on data whose answer we know."""

import functools
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from overseer.data import BinaryDataset, dataset, load_dataset
from overseer.errors import OverseerError
from overseer.models import ActivationCache
from overseer.w2s import CrossEntropy, HeadConfig, W2SConfig, make_loss, run
from overseer.w2s.learners import ProbeLearner
from overseer.w2s.losses import ProductLoss
from overseer.w2s.methods import StudentContext, make_method, method_names
from overseer.w2s.methods._common import partition, take
from overseer.w2s.methods.bootstrap import Bootstrap
from overseer.w2s.methods.label_filter import Filter, crossfit_probe, knn_consensus, least_consistent
from overseer.w2s.methods.s2s import StrongToStrong
from overseer.w2s.splits import LabeledSplit, UnlabeledSplit, w2s_splits

# ---------------------------------------------------------------------------------------------
# Every registered method, end to end through overseer.w2s.run (like sklearn's parametrize_with_checks).

N_TRAIN, N_TEST, LIMIT = 80, 60, 400


def _smoke_args(name: str, tiny_encoder: Path) -> dict:
    """Arguments a method cannot run without on the tiny models (a new method needing some adds them here)."""
    return {"bootstrap": {"chain": [str(tiny_encoder)]}}.get(name, {})


@functools.cache
def _geo() -> BinaryDataset:
    """geo_facts, built once for every method's runs (building it is most of a tiny run's time)."""
    return load_dataset("geo_facts", limit=LIMIT)


@dataset("test_methods_geo", offline=True, description="test only: geo_facts, memoised", source="test")
def _clean_geo() -> BinaryDataset:
    return replace(_geo(), name="test_methods_geo")


@dataset("test_methods_poisoned_geo", offline=True, description="test only: student-split truth flipped", source="test")
def _poisoned_geo() -> BinaryDataset:
    clean = _geo()
    flip = set(w2s_splits(clean, N_TRAIN, N_TEST, seed=0).weak_label.ids)
    examples = tuple(replace(ex, label=1 - ex.label) if ex.id in flip else ex for ex in clean.examples)
    return replace(clean, name="test_methods_poisoned_geo", examples=examples)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One activation cache for every method's run: the splits' features are computed once."""
    return tmp_path_factory.mktemp("methods-cache")


@pytest.mark.parametrize("name", method_names())
def test_every_method_runs_end_to_end_without_student_ground_truth(
    name: str, tiny_encoder: Path, tiny_causal: Path, tmp_path: Path, shared_cache: Path
) -> None:
    """Each method runs, gives probabilities, and is blind to the true labels of its own split."""
    cfg = W2SConfig(
        dataset="test_methods_geo", weak=str(tiny_encoder), strong=str(tiny_causal),
        n_train=N_TRAIN, n_test=N_TEST, head=HeadConfig(epochs=5), n_bootstrap=50, method=name, seeds=(0,),
        method_args=_smoke_args(name, tiny_encoder),
    )
    cache = shared_cache
    clean = run(cfg, out=tmp_path, cache=ActivationCache(cache, device="cpu"))
    poisoned = run(replace(cfg, dataset="test_methods_poisoned_geo"), out=tmp_path,
                   cache=ActivationCache(cache, device="cpu"))
    a, b = (pd.read_parquet(r.path / "predictions.parquet") for r in (clean, poisoned))
    assert (a.split == "test").sum() == N_TEST
    assert a["student_prob"].between(0, 1).all() and np.isfinite(a["student_prob"]).all()
    assert clean.metrics["student"]["accuracy"]["value"] is not None
    # Flipping the truth of the student's split changes nothing the student does.
    np.testing.assert_array_equal(a[a.split == "test"]["student_prob"], b[b.split == "test"]["student_prob"])
    assert poisoned.metrics["agreement"]["weak_label_accuracy"] == pytest.approx(
        1 - clean.metrics["agreement"]["weak_label_accuracy"])


@pytest.mark.parametrize(("name", "args"), [
    ("filter", {"mode": "keep"}), ("filter", {"by": "svm"}), ("filter", {"keep_frac": 1.5}),
    ("filter", {"loss": "nope"}), ("s2s", {"folds": 1}), ("s2s", {"rounds": -1}),
    ("bootstrap", {"chain": []}), ("bootstrap", {"chain": ["./no/such/model"]}), ("bootstrap", {"final_chunks": "x"}),
    ("product", {"gamma": 1.0}),
])
def test_bad_method_arguments_fail_when_the_method_is_made(name: str, args: dict) -> None:
    with pytest.raises(OverseerError):
        make_method(name, **args)


# ---------------------------------------------------------------------------------------------
# Product loss.


def test_product_target_and_loss_match_hand_computation() -> None:
    logits = torch.tensor([[0.0, float(np.log(3.0))]])  # student: [0.25, 0.75]
    weak = torch.tensor([[0.8, 0.2]])
    loss = ProductLoss(alpha=1.0, beta=1.0)
    # 0.8 * 0.25 = 0.2 and 0.2 * 0.75 = 0.15, normalised: [4/7, 3/7]
    torch.testing.assert_close(loss.targets(logits, weak, 0.5), torch.tensor([[4 / 7, 3 / 7]]))
    expected = -(4 / 7 * np.log(0.25) + 3 / 7 * np.log(0.75))
    assert float(loss(logits, weak, 0.5)) == pytest.approx(expected, rel=1e-5)
    # alpha = 2, beta = 0.5: 0.64 * 0.5 = 0.32 and 0.04 * sqrt(0.75)
    sharp = ProductLoss(alpha=2.0, beta=0.5).targets(logits, weak, 0.5)[0, 0]
    assert float(sharp) == pytest.approx(0.32 / (0.32 + 0.04 * np.sqrt(0.75)), rel=1e-5)


def test_product_loss_reduces_to_xent_without_student_and_detaches_the_target() -> None:
    torch.manual_seed(0)
    logits = torch.randn(8, 2, requires_grad=True)
    weak = torch.softmax(torch.randn(8, 2), -1)
    xent = float(CrossEntropy()(logits, weak, 0.3).detach())
    assert float(ProductLoss(beta=0.0)(logits, weak, 0.3).detach()) == pytest.approx(xent)
    # Warm-up: at the start beta is 0, so it is plain cross-entropy too.
    assert float(ProductLoss(warmup_frac=0.5)(logits, weak, 0.0).detach()) == pytest.approx(xent)
    loss = ProductLoss()
    loss(logits, weak, 1.0).backward()
    target = loss.targets(logits, weak, 1.0)
    # With a detached target the gradient of mean cross-entropy is (softmax - target) / batch.
    torch.testing.assert_close(logits.grad, (torch.softmax(logits, -1) - target).detach() / 8)


def test_product_loss_handles_hard_labels_and_is_registered() -> None:
    logits = torch.tensor([[2.0, -2.0]])
    hard = torch.tensor([[0.0, 1.0]])
    target = ProductLoss().targets(logits, hard, 1.0)
    assert torch.isfinite(target).all() and target[0, 1] > 0.99  # a hard weak label decides
    assert isinstance(make_loss("product", alpha=0.5), ProductLoss)
    assert make_method("product", alpha=0.5).loss_args == {"alpha": 0.5, "beta": 1.0, "warmup_frac": 0.0}


# ---------------------------------------------------------------------------------------------
# Filtering: pure functions on clustered synthetic features.


def _clusters(n: int = 200, dim: int = 16, n_flip: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % 2
    centres = rng.normal(size=(2, dim)) * 4
    x = centres[truth] + rng.normal(size=(n, dim))
    flipped = np.sort(rng.choice(n, n_flip, replace=False))
    weak = truth.astype(float)
    weak[flipped] = 1 - weak[flipped]
    return x, weak, truth, flipped


def test_knn_filter_drops_exactly_the_flipped_labels() -> None:
    x, weak, truth, flipped = _clusters()
    consensus = knn_consensus(x, weak, k=10, block=37)  # blocks that do not divide n
    worst = least_consistent(np.abs(weak - consensus), keep_frac=1 - len(flipped) / len(x))
    np.testing.assert_array_equal(worst, flipped)
    # Relabelling with the neighbours' mean recovers the truth of the flipped examples.
    assert np.all(np.round(consensus[flipped]) == truth[flipped])


def test_knn_consensus_matches_brute_force_and_excludes_self() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 5)), rng.random(30)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    expected = np.array([y[np.argsort(-row)[:4]].mean() for row in sim])
    np.testing.assert_allclose(knn_consensus(x, y, k=4, block=7), expected)
    with pytest.raises(OverseerError):
        knn_consensus(x, y, k=30)


def test_probe_filter_flags_the_flipped_labels() -> None:
    x, weak, truth, flipped = _clusters(n_flip=12)
    consensus = crossfit_probe(x, weak, folds=5, seed=0)
    worst = least_consistent(np.abs(weak - consensus), keep_frac=1 - len(flipped) / len(x))
    np.testing.assert_array_equal(worst, flipped)


def test_least_consistent_keeps_the_requested_share() -> None:
    dis = np.array([0.9, 0.1, 0.5, 0.0, 0.7])
    np.testing.assert_array_equal(least_consistent(dis, 0.6), [0, 4])
    assert len(least_consistent(dis, 1.0)) == 0 and len(least_consistent(dis, 0.0)) == 5


# ---------------------------------------------------------------------------------------------
# Methods on a real ProbeLearner over tiny models, with texts whose features cluster by class.

_POS = "paris france london england city".split()
_NEG = "tokyo japan berlin germany country".split()


def _text_split(n: int, seed: int = 0) -> tuple[UnlabeledSplit, np.ndarray]:
    rng = random.Random(seed)
    labels = np.arange(n) % 2
    texts = tuple(" ".join(rng.choice(_POS if y else _NEG) for _ in range(8)) for y in labels)
    return UnlabeledSplit("synthetic", tuple(f"s{i}" for i in range(n)), texts, None), labels


def _context(learner: ProbeLearner, strong: str, weak_labels: np.ndarray, split: UnlabeledSplit,
             weak: str = "weak", seed: int = 0) -> StudentContext:
    unused = LabeledSplit("weak_train", (), (), None, np.array([], dtype=np.int64))
    return StudentContext(strong, weak, split, weak_labels, unused, learner, seed)


@pytest.fixture
def learner(tmp_path: Path) -> ProbeLearner:
    return ProbeLearner(ActivationCache(tmp_path / "cache", device="cpu"), head={"epochs": 15, "lr": 1e-2})


def test_knn_filter_on_tiny_model_features_drops_the_flipped_examples(
    learner: ProbeLearner, tiny_encoder: Path
) -> None:
    split, truth = _text_split(80)
    flipped = np.arange(0, 80, 10)
    weak = truth.astype(float)
    weak[flipped] = 1 - weak[flipped]
    ctx = _context(learner, str(tiny_encoder), weak, split)
    kept, labels = Filter(mode="drop", k=8, keep_frac=0.9).labels(ctx)
    np.testing.assert_array_equal(np.setdiff1d(np.arange(80), kept), flipped)
    np.testing.assert_array_equal(labels, truth[kept])  # what is left is clean
    idx, relabelled = Filter(mode="relabel", k=8, keep_frac=0.9).labels(ctx)
    assert len(idx) == 80 and np.all(np.round(relabelled) == truth)
    student = make_method("filter", k=8).train_student(ctx)
    assert ((student.predict_proba(split) > 0.5) == truth).mean() > 0.9


def test_bootstrap_chunks_are_disjoint_and_each_link_learns_only_from_its_predecessor(
    learner: ProbeLearner, tiny_encoder: Path, tiny_causal: Path, tiny_causal_right: Path
) -> None:
    split, truth = _text_split(90)
    weak = np.clip(truth + np.random.default_rng(0).normal(0, 0.2, 90), 0.01, 0.99)
    ctx = _context(learner, str(tiny_causal), weak, split)
    chain = (str(tiny_encoder), str(tiny_causal_right))
    student, stages = Bootstrap(chain=chain, final_chunks="last").run(ctx)
    assert [s.model for s in stages] == [*chain, str(tiny_causal)]
    chunks = partition(90, 3, seed=0)
    for stage, chunk in zip(stages, chunks, strict=True):
        np.testing.assert_array_equal(stage.train_idx, chunk)
    np.testing.assert_array_equal(stages[0].targets, weak[chunks[0]])
    for prev, stage in zip(stages, stages[1:], strict=False):
        # A link trains on exactly what its predecessor labelled, never on its own labels.
        np.testing.assert_array_equal(stage.train_idx, prev.labelled_idx)
        np.testing.assert_array_equal(stage.targets, prev.labels)
        assert not np.intersect1d(prev.train_idx, prev.labelled_idx).size
    # The labels carry the signal along the chain: each intermediate's labels are mostly right.
    for stage in stages[:-1]:
        assert ((stage.labels > 0.5) == truth[stage.labelled_idx]).mean() > 0.8
    assert ((student.predict_proba(split) > 0.5) == truth).mean() > 0.8

    _, stages_all = Bootstrap(chain=chain, final_chunks="all").run(ctx)
    final = stages_all[-1]
    np.testing.assert_array_equal(final.train_idx, np.sort(np.concatenate([chunks[0], chunks[2]])))
    np.testing.assert_array_equal(final.targets, stages_all[-2].labels)


def test_bootstrap_default_chain_is_the_ladder_between_weak_and_strong(learner: ProbeLearner) -> None:
    split, truth = _text_split(10)
    ctx = _context(learner, "smollm2-135m", truth.astype(float), split, weak="minilm-l6")
    assert Bootstrap().models(ctx) == ("smollm2-135m-l16",)
    assert Bootstrap().models(replace(ctx, weak="smollm2-135m-l8")) == ("minilm-l6", "smollm2-135m-l16")
    with pytest.raises(OverseerError, match="chain"):
        Bootstrap().models(replace(ctx, weak="/some/dir"))


def test_partition_is_disjoint_covering_and_seeded() -> None:
    parts = partition(101, 4, seed=3)
    assert sorted(np.concatenate(parts).tolist()) == list(range(101))
    assert [len(p) for p in parts] == [26, 25, 25, 25]
    assert all(np.array_equal(a, b) for a, b in zip(parts, partition(101, 4, seed=3), strict=True))
    assert not np.array_equal(parts[0], partition(101, 4, seed=4)[0])
    with pytest.raises(OverseerError):
        partition(3, 4, seed=0)


def test_take_keeps_order_and_pairs() -> None:
    split = UnlabeledSplit("x", ("a", "b", "c"), ("ta", "tb", "tc"), ("pa", "pb", "pc"))
    sub = take(split, np.array([2, 0]), "t")
    assert (sub.ids, sub.texts, sub.text_pairs, sub.name) == (("c", "a"), ("tc", "ta"), ("pc", "pa"), "x[t]")


def test_s2s_runs_the_requested_rounds_each_relabelled_by_the_previous_student(
    learner: ProbeLearner, tiny_causal: Path
) -> None:
    split, truth = _text_split(60)
    weak = np.where(truth == 1, 0.7, 0.3)
    ctx = _context(learner, str(tiny_causal), weak, split)
    student, history = StrongToStrong(rounds=3).run(ctx)
    assert len(history) == 4
    np.testing.assert_array_equal(history[0], weak)
    for before, after in zip(history, history[1:], strict=False):
        refit = learner.fit(str(tiny_causal), split, before, seed=0)
        np.testing.assert_allclose(after, refit.predict_proba(split), rtol=1e-6)
    last = learner.fit(str(tiny_causal), split, history[-1])
    np.testing.assert_allclose(student.predict_proba(split), last.predict_proba(split), rtol=1e-6)
    # A converged, L2-penalised head reproduces its targets up to the penalty's shrinkage: every round keeps
    # each label on the truth's side and is a little less confident than the one before.
    margins = [np.abs(h - 0.5).mean() for h in history]
    assert all(np.array_equal(h >= 0.5, truth == 1) for h in history)
    assert margins[0] > margins[1] > margins[2] > margins[3] > 0.1
    # rounds=0 is plain cross-entropy on the weak labels.
    plain = StrongToStrong(rounds=0).train_student(ctx).predict_proba(split)
    np.testing.assert_allclose(plain, make_method("xent").train_student(ctx).predict_proba(split))


def test_s2s_cross_fitted_labels_come_from_students_that_never_saw_them(
    learner: ProbeLearner, tiny_causal: Path
) -> None:
    split, truth = _text_split(60)
    weak = truth.astype(float)
    weak[:6] = 1 - weak[:6]  # a few wrong labels a student could memorise
    ctx = _context(learner, str(tiny_causal), weak, split)
    _, history = StrongToStrong(rounds=1, folds=2).run(ctx)
    parts = partition(60, 2, seed=0)
    for part, other in ((parts[0], parts[1]), (parts[1], parts[0])):
        fold_student = learner.fit(str(tiny_causal), take(split, other, "o"), weak[other])
        held_out = fold_student.predict_proba(take(split, part, "p"))
        np.testing.assert_allclose(history[1][part], held_out, rtol=1e-6)
