import pytest
import torch

from overseer.errors import OverseerError
from overseer.w2s import AuxConfidence, CrossEntropy, confidence_coefficient, make_loss
from overseer.w2s.losses import harden


def test_linear_warmup_reaches_full_coefficient() -> None:
    assert confidence_coefficient(0.0, 0.75, 0.2) == 0.0
    assert confidence_coefficient(0.1, 0.75, 0.2) == pytest.approx(0.375)
    assert confidence_coefficient(0.2, 0.75, 0.2) == pytest.approx(0.75)
    assert confidence_coefficient(0.9, 0.75, 0.2) == pytest.approx(0.75)
    assert confidence_coefficient(0.5, 0.75, 0.0) == pytest.approx(0.75)


def test_reference_schedule_only_reaches_warmup_frac_during_warmup() -> None:
    # The public reference code uses step_frac itself during warm-up: at the end of a 0.1 warm-up
    # the weight is 0.1 * aux_coef, not aux_coef, then it jumps.
    assert confidence_coefficient(0.1, 1.0, 0.1, "reference") == pytest.approx(0.1)
    assert confidence_coefficient(0.11, 1.0, 0.1, "reference") == pytest.approx(1.0)
    assert confidence_coefficient(0.1, 1.0, 0.1, "linear") == pytest.approx(1.0)


def test_soft_cross_entropy_matches_torch() -> None:
    torch.manual_seed(0)
    logits = torch.randn(8, 2)
    targets = torch.softmax(torch.randn(8, 2), -1)
    expected = torch.nn.functional.cross_entropy(logits, targets)
    assert CrossEntropy()(logits, targets, 0.5) == pytest.approx(float(expected), rel=1e-5)
    hard = CrossEntropy(hard=True)(logits, targets, 0.5)
    assert hard == pytest.approx(float(torch.nn.functional.cross_entropy(logits, targets.argmax(-1))), rel=1e-5)


def test_harden_matches_requested_class_balance() -> None:
    probs = torch.linspace(0.01, 0.99, 100)
    hardened = harden(probs, 0.3)
    assert hardened[:, 1].sum() == 30
    assert hardened[-30:, 1].all()  # the most confident are class 1


def test_logconf_at_zero_weight_is_plain_xent_and_at_full_weight_uses_own_predictions() -> None:
    torch.manual_seed(1)
    logits = torch.randn(16, 2)
    weak = torch.full((16, 2), 0.5)  # an uninformative supervisor
    loss = AuxConfidence(aux_coef=1.0, warmup_frac=0.5)
    assert loss(logits, weak, 0.0) == pytest.approx(float(CrossEntropy()(logits, weak, 0.0)))
    own = harden(torch.softmax(logits, -1)[:, 1], 0.5)
    assert loss(logits, weak, 0.9) == pytest.approx(float(CrossEntropy()(logits, own, 0.0)), rel=1e-5)


def test_logconf_lets_confident_student_disagree_with_weak_labels() -> None:
    """Minimising logconf keeps a confident student's answers; minimising xent flips them to the weak labels."""
    weak = torch.tensor([[0.9, 0.1], [0.1, 0.9]])  # weak labels say the opposite of the student

    def train(loss) -> torch.Tensor:
        logits = torch.tensor([[-3.0, 3.0], [3.0, -3.0]], requires_grad=True)
        opt = torch.optim.SGD([logits], lr=1.0)
        for _ in range(200):
            opt.zero_grad()
            loss(logits, weak, 1.0).backward()
            opt.step()
        return logits.detach().argmax(-1)

    assert train(AuxConfidence(aux_coef=0.75, warmup_frac=0.0)).tolist() == [1, 0]
    assert train(CrossEntropy()).tolist() == [0, 1]


def test_unknown_loss_is_a_clear_error() -> None:
    with pytest.raises(OverseerError, match="unknown w2s loss .mse.; allowed: logconf, product, xent"):
        make_loss("mse")
