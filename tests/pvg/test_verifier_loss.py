"""The verifier's Bradley-Terry loss against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from overseer.errors import OverseerError
from overseer.pvg.verifier import bradley_terry_loss, pair_loss, pairs

torch.set_num_threads(1)

# Two problems: 0 has solutions 0 (correct) and 1 (incorrect); 1 has 2 (incorrect) and 3 (correct).
SCORES = [2.0, 0.5, 1.0, -1.0]
CORRECT = [True, False, False, True]
GROUPS = [0, 0, 1, 1]


def test_pairs_by_hand() -> None:
    assert pairs(torch.tensor(CORRECT), torch.tensor(GROUPS)).tolist() == [[0, 1], [3, 2]]
    # The correct solution 0 is never paired with the incorrect solutions of problem 1; problem 1 has no
    # correct solution, so no pair; 0/1 flags work like booleans.
    got = pairs(torch.tensor([1, 0, 1, 0, 0]), torch.tensor([0, 0, 0, 1, 1]))
    assert got.tolist() == [[0, 1], [2, 1]]
    assert got.dtype == torch.long
    assert pairs(torch.tensor([True, True]), torch.tensor([0, 0])).shape == (0, 2)


def test_loss_by_hand() -> None:
    # pairs (0, 1): -log sigmoid(2.0 - 0.5) = log(1 + e^-1.5) = 0.2014132779827524
    #       (3, 2): -log sigmoid(-1.0 - 1.0) = log(1 + e^2)   = 2.1269280110429727
    # mean 1.1641706445128626; penalty 0.01 * mean(4, 0.25, 1, 1) = 0.01 * 1.5625 = 0.015625
    loss = bradley_terry_loss(
        torch.tensor(SCORES, dtype=torch.float64), torch.tensor(CORRECT), torch.tensor(GROUPS), score_penalty=0.01
    )
    assert loss.shape == ()
    assert loss.item() == pytest.approx(1.1797956445128626, abs=1e-12)


def test_no_pairs_leaves_only_the_penalty() -> None:
    scores = torch.tensor([1.0, -3.0], dtype=torch.float64, requires_grad=True)
    loss = bradley_terry_loss(scores, torch.tensor([True, True]), torch.tensor([0, 0]), score_penalty=0.5)
    assert loss.item() == pytest.approx(0.5 * (1 + 9) / 2, abs=1e-12)
    loss.backward()
    # d/dV of 0.5 * mean(V^2) = 0.5 * 2V / 2 = 0.5 V: the penalty pulls scores towards 0.
    assert scores.grad.tolist() == pytest.approx([0.5, -1.5], abs=1e-12)


def test_gradient_pushes_correct_scores_up() -> None:
    scores = torch.tensor(SCORES, dtype=torch.float64, requires_grad=True)
    loss = bradley_terry_loss(scores, torch.tensor(CORRECT), torch.tensor(GROUPS), score_penalty=0.0)
    loss.backward()
    # d/dV_i of softplus(V_j - V_i) / 2 = -sigmoid(V_j - V_i) / 2, and +sigmoid(V_j - V_i) / 2 for V_j:
    # sigmoid(-1.5) / 2 = 0.0912127619, sigmoid(2) / 2 = 0.440398539
    assert scores.grad.tolist() == pytest.approx([-0.09121276190317817, 0.09121276190317817,
                                                  0.44039853898894116, -0.44039853898894116], abs=1e-12)
    with torch.no_grad():
        stepped = scores - 1.0 * scores.grad
    assert stepped[0] > scores[0] and stepped[3] > scores[3]  # correct solutions score higher
    assert stepped[1] < scores[1] and stepped[2] < scores[2]  # incorrect ones lower
    after = bradley_terry_loss(stepped, torch.tensor(CORRECT), torch.tensor(GROUPS), score_penalty=0.0)
    assert after < loss


def test_large_score_gaps_stay_finite() -> None:
    loss = bradley_terry_loss(torch.tensor([-200.0, 200.0]), torch.tensor([True, False]), torch.tensor([0, 0]), 0.0)
    assert loss.item() == pytest.approx(400.0)


@pytest.mark.parametrize(
    ("scores", "correct", "groups", "penalty", "message"),
    [
        ([[1.0, 2.0]], [True, False], [0, 0], 0.0, "scores must be 1-D"),
        ([], [], [], 0.0, "needs at least one score"),
        ([1.0, float("nan")], [True, False], [0, 0], 0.0, "scores must be finite"),
        ([1.0, 2.0], [True], [0, 0], 0.0, "correct has 1 entries for 2 solutions"),
        ([1.0, 2.0], [True, False], [0], 0.0, "groups has 1 entries for 2 solutions"),
        ([1.0, 2.0], [2, 0], [0, 0], 0.0, "correct must hold booleans"),
        ([1.0, 2.0], [True, False], [0.5, 0.5], 0.0, "groups must be integer problem ids"),
        ([1.0, 2.0], [True, False], [0, 0], -1.0, "score_penalty must be a number >= 0"),
    ],
)
def test_bad_inputs_are_one_line_errors(scores, correct, groups, penalty, message) -> None:
    with pytest.raises(OverseerError, match=message) as err:
        bradley_terry_loss(torch.tensor(scores), torch.tensor(correct), torch.tensor(groups), penalty)
    assert "\n" not in str(err.value)


def test_the_games_pair_form_is_bradley_terry_with_each_pair_its_own_problem() -> None:
    """``pair_loss`` (what the game trains on) equals ``bradley_terry_loss`` when each pair is one problem."""
    v_good, v_bad = torch.tensor([1.5, -0.25, 0.0]), torch.tensor([0.5, 0.75, -2.0])
    # compare logits as fit_classifier's pairing hands them over: column 1 minus column 0 is V_good - V_bad
    logits = torch.stack([torch.zeros(3), v_good - v_bad], dim=1)
    by_hand = float(np.mean(np.log1p(np.exp(-(v_good - v_bad).numpy()))))
    assert float(pair_loss(logits)) == pytest.approx(by_hand, rel=1e-6)
    scores = torch.cat([v_good, v_bad])
    general = bradley_terry_loss(scores, torch.tensor([True] * 3 + [False] * 3), torch.arange(3).repeat(2), 0.0)
    assert float(pair_loss(logits)) == pytest.approx(float(general), rel=1e-6)
