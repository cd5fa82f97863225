import numpy as np
import pytest

from overseer.errors import OverseerError
from overseer.w2s.learners import choose_l2
from overseer.w2s.synthetic import (
    WeakSupervisor,
    class_error_rates,
    flip_at_random,
    noise_matched_labels,
    parse_weak,
    stream,
)


def test_weak_specs_name_a_model_noise_or_both() -> None:
    assert parse_weak("smollm2-135m-l8") == WeakSupervisor("smollm2-135m-l8")
    assert parse_weak("noise:0.3") == WeakSupervisor(None, (0.3, 0.3))
    assert parse_weak("noise-cc:0.1,0.4") == WeakSupervisor(None, (0.1, 0.4))
    assert parse_weak("minilm-l6+noise:0.2") == WeakSupervisor("minilm-l6", (0.2, 0.2))
    assert parse_weak("/models/a+b/dir+noise-cc:0,1") == WeakSupervisor("/models/a+b/dir", (0.0, 1.0))


@pytest.mark.parametrize("spec", ["noise:", "noise:1.5", "noise:-0.1", "noise:a", "noise-cc:0.1", "noise:0.1,0.2",
                                  "+noise:0.1", "noise-cc:0.1,0.2,0.3"])
def test_malformed_noise_specs_are_refused_in_one_line(spec: str) -> None:
    with pytest.raises(OverseerError, match=r"weak supervisor .*allowed: noise:P") as info:
        parse_weak(spec)
    assert "\n" not in str(info.value) and repr(spec) in str(info.value)


def test_class_error_rates_by_hand() -> None:
    truth = np.array([0, 0, 0, 0, 1, 1])
    weak = np.array([0.1, 0.9, 0.2, 0.3, 0.4, 0.8])  # class 0: 1 of 4 wrong; class 1: 1 of 2 wrong
    assert class_error_rates(weak, truth) == (0.25, 0.5)


def test_noise_matched_labels_flip_exactly_the_rate_per_class_at_random() -> None:
    truth = np.array([0] * 600 + [1] * 400)
    a = noise_matched_labels(truth, (0.1, 0.25), stream(0, 3))
    assert set(a) == {0.0, 1.0}
    assert np.sum(a[truth == 0] == 1) == 60 and np.sum(a[truth == 1] == 0) == 100
    b = noise_matched_labels(truth, (0.1, 0.25), stream(1, 3))
    assert not np.array_equal(a, b)  # other seed, other examples
    np.testing.assert_array_equal(a, noise_matched_labels(truth, (0.1, 0.25), stream(0, 3)))  # seeded


def test_flip_at_random_matches_its_rates_and_turns_soft_labels_over() -> None:
    truth = np.array([0] * 5000 + [1] * 5000)
    flipped = flip_at_random(truth.astype(float), truth, (0.1, 0.4), np.random.default_rng(0))
    assert abs(np.mean(flipped[truth == 0] == 1) - 0.1) < 0.02
    assert abs(np.mean(flipped[truth == 1] == 0) - 0.4) < 0.02
    soft = flip_at_random(np.full(4, 0.7), np.ones(4), (0.0, 1.0), np.random.default_rng(0))
    np.testing.assert_allclose(soft, 0.3)  # p -> 1 - p


def test_cross_validation_regularises_noise_hard_and_a_clean_signal_less() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 20)).astype(np.float32)
    head: dict[str, float] = {}
    grid = (0.01, 100.0)
    noise = choose_l2(x, rng.integers(0, 2, 300).astype(np.float32), grid, 3, head)
    assert noise["l2"] == 100.0  # labels unrelated to x: the most shrinkage predicts held-out best
    clean = choose_l2(x, (x[:, 0] > 0).astype(np.float32), grid, 3, head)
    assert clean["l2"] == 0.01 and clean["cv_loss"]["0.01"] < clean["cv_loss"]["100.0"]
    assert noise["grid"] == [0.01, 100.0] and noise["folds"] == 3
    with pytest.raises(OverseerError, match="at least 6 examples"):
        choose_l2(x[:4], np.ones(4, dtype=np.float32), grid, 3, head)
