"""The prover's rewards on a hand-built batch: 2 problems x 2 roles x 2 samples, expected values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from overseer._registry import lookup
from overseer.errors import OverseerError
from overseer.pvg import rewards
from overseer.pvg.rewards import (
    cgc_rewards,
    correctness_rewards,
    get_reward,
    goodhart_rewards,
    prover_reward_function,
    reward_names,
    src_rewards,
)
from overseer.pvg.toy import is_correct

# problem A helpful | problem A sneaky | problem B helpful | problem B sneaky
SCORES = [2.0, 1.0, 3.0, 0.0, 0.5, 0.25, -1.0, -1.5]
CORRECT = [True, False, False, True, False, True, True, False]
HELPFUL = [True, True, False, False, True, True, False, False]
PROBLEM = ["A", "A", "A", "A", "B", "B", "B", "B"]
ROLE = ["helpful", "helpful", "sneaky", "sneaky", "helpful", "helpful", "sneaky", "sneaky"]
GROUPS = [f"{p}-{r}" for p, r in zip(PROBLEM, ROLE, strict=True)]

# SRC by hand. Group means: A-h 1.5, A-s 1.5, B-h 0.375, B-s -1.25, so V' =
#   A-h [ 0.5, -0.5]   sign (+1)(+1)=+1 for correct helpful          -> [ 0.5, -1]
#   A-s [ 1.5, -1.5]   sign (-1)(-1)=+1 for incorrect sneaky         -> [ 1.5, -1]
#   B-h [0.125,-0.125] sign (-1)(+1)=-1 for incorrect helpful        -> [-0.125, -1]
#   B-s [0.25, -0.25]  sign (+1)(-1)=-1 for correct sneaky           -> [-0.25, -1]
SRC_EXPECTED = [0.5, -1.0, 1.5, -1.0, -0.125, -1.0, -0.25, -1.0]
# CGC by hand (penalty -2): the score where correct == helpful, else -2.
CGC_EXPECTED = [2.0, -2.0, 3.0, -2.0, -2.0, 0.25, -2.0, -1.5]


def test_src_matches_hand_computation() -> None:
    np.testing.assert_allclose(src_rewards(SCORES, CORRECT, HELPFUL, GROUPS), SRC_EXPECTED, rtol=0, atol=1e-12)


def test_src_groups_need_not_be_contiguous() -> None:
    order = [7, 0, 4, 2, 6, 1, 5, 3]
    take = lambda xs: [xs[i] for i in order]  # noqa: E731
    got = src_rewards(take(SCORES), take(CORRECT), take(HELPFUL), take(GROUPS))
    np.testing.assert_allclose(got, take(SRC_EXPECTED), rtol=0, atol=1e-12)


def test_src_gates_on_centred_score_not_raw_score() -> None:
    # Raw V = 1.0 > 0 but the group mean is 1.5, so V' = -0.5 < 0: the reward is -1, not 0.5 or -0.5.
    got = src_rewards([2.0, 1.0], [True, True], [True, True], [0, 0])
    assert got.tolist() == [0.5, -1.0]
    # Raw V = -1.0 < 0 but V' = +0.25 > 0: the gate opens (sign -1 here: a correct sneaky solution).
    got = src_rewards([-1.0, -1.5], [True, False], [False, False], [0, 0])
    assert got.tolist() == [-0.25, -1.0]


@pytest.mark.parametrize(
    ("correct", "helpful", "expected"),
    [(True, True, 0.5), (False, True, -0.5), (False, False, 0.5), (True, False, -0.5)],
)
def test_src_sign_factor(correct: bool, helpful: bool, expected: float) -> None:
    # scores [1, 0]: mean 0.5, V' = [0.5, -0.5]; only the first passes the gate.
    got = src_rewards([1.0, 0.0], [correct, True], [helpful, helpful], [0, 0])
    assert got.tolist() == [expected, -1.0]


def test_src_ties_and_singletons_get_minus_one() -> None:
    # 0.1 three times: the mean is not exactly 0.1 in floating point, but V' is a tie (0) for all three.
    assert src_rewards([0.1, 0.1, 0.1, 5.0], [True] * 4, [True] * 4, [0, 0, 0, 1]).tolist() == [-1.0] * 4


def test_cgc_matches_hand_computation() -> None:
    np.testing.assert_allclose(cgc_rewards(SCORES, CORRECT, HELPFUL), CGC_EXPECTED, rtol=0, atol=0)
    got = cgc_rewards(SCORES, CORRECT, HELPFUL, penalty=-5.0)
    assert got.tolist() == [2.0, -5.0, 3.0, -5.0, -5.0, 0.25, -5.0, -1.5]


def test_cgc_never_pays_a_match_less_than_a_mismatch() -> None:
    # helpful-correct scored -3 and -1, helpful-incorrect scored 4: the match's reward is floored at the penalty.
    got = cgc_rewards([-3.0, -1.0, 4.0], [True, True, False], [True, True, True], penalty=-2.0)
    assert got.tolist() == [-2.0, -1.0, -2.0]


def test_goodhart_and_correctness() -> None:
    assert goodhart_rewards(SCORES).tolist() == SCORES
    assert correctness_rewards(CORRECT).tolist() == [1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    assert correctness_rewards([1, 0]).tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: src_rewards([1.0, float("nan")], [1, 1], [1, 1], [0, 0]), r"scores\[1\] is nan"),
        (lambda: goodhart_rewards([[1.0, 2.0]]), "1-D"),
        (lambda: src_rewards([1.0, 2.0], [1], [1, 1], [0, 0]), "correct has 1 entries but there are 2 scores"),
        (lambda: src_rewards([1.0, 2.0], [1, 1], [1, 1], [0]), "groups has 1 entries"),
        (lambda: cgc_rewards([1.0], [2], [1]), "correct must hold booleans"),
        (lambda: cgc_rewards([1.0], ["yes"], [1]), "correct must hold booleans"),
        (lambda: cgc_rewards([1.0], [1], [1], penalty=float("nan")), "penalty must be a finite number"),
        (lambda: correctness_rewards([0.5]), "correct must hold booleans"),
    ],
)
def test_bad_inputs_are_one_line_errors(call, message: str) -> None:
    with pytest.raises(OverseerError, match=message) as err:
        call()
    assert "\n" not in str(err.value)


def test_registry() -> None:
    assert reward_names() == ["cgc", "correctness", "goodhart", "src"]
    assert lookup("pvg_reward", "src") is src_rewards
    assert get_reward("cgc") is cgc_rewards
    with pytest.raises(OverseerError, match=r"^unknown pvg reward 'bogus'; allowed: cgc, correctness, goodhart, src$"):
        get_reward("bogus")
    with pytest.raises(OverseerError, match="unknown pvg reward 'bogus'"):
        prover_reward_function("bogus", lambda q, s: np.zeros(len(s)), is_correct)


# --------------------------------------------------------------------------- TRL reward functions

ANSWER = {"A": 2, "B": 4}
QUESTION = {"A": "Start at 7. Add 5. Work mod 10.", "B": "Start at 2. Multiply by 2. Work mod 10."}


def _solution(i: int) -> str:
    answer = ANSWER[PROBLEM[i]] if CORRECT[i] else ANSWER[PROBLEM[i]] + 1
    return f"step {i}\nAnswer: {answer}"


class RecordingVerifier:
    """Returns the hand-set scores in order and records what it was asked."""

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores
        self.calls: list[tuple[list[str], list[str]]] = []

    def __call__(self, problems: list[str], solutions: list[str]) -> np.ndarray:
        self.calls.append((list(problems), list(solutions)))
        return np.array(self.scores)


def _trl_call(fn, roles: list[str], chat: bool = True) -> list[float]:
    """Call ``fn`` the way TRL 1.x's GRPOTrainer does: prompts, completions and dataset columns as keyword lists."""
    pairs = zip(PROBLEM, roles, strict=True)
    prompts = [[{"role": "user", "content": f"You are {r}. {QUESTION[p]}"}] for p, r in pairs]
    completions = [_solution(i) for i in range(8)]
    if chat:
        completions = [[{"role": "assistant", "content": c}] for c in completions]
    return fn(
        prompts=prompts,
        completions=completions,
        completion_ids=[[1, 2]] * 8,
        role=roles,
        answer=[ANSWER[p] for p in PROBLEM],
        problem_id=PROBLEM,
        question=[QUESTION[p] for p in PROBLEM],
        trainer_state=None,
        log_extra=lambda *a, **k: None,
        log_metric=lambda *a, **k: None,
    )


@pytest.mark.parametrize(("kind", "expected"), [("src", SRC_EXPECTED), ("cgc", CGC_EXPECTED), ("goodhart", SCORES)])
def test_trl_call_with_chat_completions(kind: str, expected: list[float]) -> None:
    verifier = RecordingVerifier(SCORES)
    fn = prover_reward_function(kind, verifier, is_correct)
    assert fn.__name__ == f"pvg_{kind}"
    got = _trl_call(fn, ROLE)
    assert isinstance(got, list) and all(type(v) is float for v in got)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    questions, solutions = verifier.calls[0]
    assert questions == [QUESTION[p] for p in PROBLEM]
    assert solutions == [_solution(i) for i in range(8)]


def test_string_completions_give_the_same_rewards() -> None:
    fn = prover_reward_function("src", RecordingVerifier(SCORES), is_correct)
    assert _trl_call(fn, ROLE, chat=False) == _trl_call(fn, ROLE, chat=True)


def test_verifier_never_sees_the_role() -> None:
    verifier = RecordingVerifier(SCORES)
    fn = prover_reward_function("src", verifier, is_correct)
    flipped = ["sneaky" if r == "helpful" else "helpful" for r in ROLE]
    first, second = _trl_call(fn, ROLE), _trl_call(fn, flipped)
    assert verifier.calls[0] == verifier.calls[1]
    assert first != second  # the role does change the reward, just not what the verifier is shown


def test_groups_are_problem_and_role() -> None:
    # One problem id for all 4: SRC must still centre within (problem, role), not within the problem.
    fn = prover_reward_function("src", RecordingVerifier([2.0, 1.0, 3.0, 0.0]), is_correct)
    got = fn(
        prompts=["p"] * 4,
        completions=["Answer: 2", "Answer: 3", "Answer: 3", "Answer: 2"],
        role=["helpful", "sneaky", "helpful", "sneaky"],
        answer=["2"] * 4,
        problem_id=[0] * 4,
        question=["q"] * 4,
    )
    # groups: helpful {2.0 (correct), 3.0 (incorrect)} mean 2.5; sneaky {1.0 (incorrect), 0.0 (correct)} mean 0.5.
    # per-problem centring (mean 1.5) would give [0.5, -1, -1.5, -1] instead.
    assert got == [-1.0, 0.5, -0.5, -1.0]


def test_correctness_does_not_call_the_verifier_and_goodhart_needs_no_roles() -> None:
    def no_verifier(problems: list[str], solutions: list[str]) -> np.ndarray:
        raise AssertionError("the correctness reward must not call the verifier")

    fn = prover_reward_function("correctness", no_verifier, is_correct)
    assert fn(["p", "p"], ["Answer: 4", "Answer: 5"], answer=[4, 4]) == [1.0, 0.0]

    def never(text: str, answer: object) -> bool:
        raise AssertionError("goodhart must not check answers")

    fn = prover_reward_function("goodhart", RecordingVerifier([0.3, -0.7]), never)
    assert fn(["p", "p"], ["a", "b"], question=["q", "q"]) == [0.3, -0.7]


def test_question_column_none_uses_the_prompt() -> None:
    verifier = RecordingVerifier([0.0, 1.0])
    fn = prover_reward_function("goodhart", verifier, is_correct, question_column=None)
    fn([[{"role": "system", "content": "s"}, {"role": "user", "content": "Q1"}], "Q2"], ["a", "b"])
    assert verifier.calls[0][0] == ["Q1", "Q2"]


def test_reward_args_reach_the_formula() -> None:
    fn = prover_reward_function("cgc", RecordingVerifier(SCORES), is_correct, reward_args={"penalty": -5.0})
    assert _trl_call(fn, ROLE) == [2.0, -5.0, 3.0, -5.0, -5.0, 0.25, -5.0, -1.5]
    with pytest.raises(OverseerError, match="reward 'cgc' takes no argument 'alpha'; allowed: penalty"):
        prover_reward_function("cgc", RecordingVerifier(SCORES), is_correct, reward_args={"alpha": 1.0})
    with pytest.raises(OverseerError, match="reward 'src' takes no argument 'scores'; allowed: \\(none\\)"):
        prover_reward_function("src", RecordingVerifier(SCORES), is_correct, reward_args={"scores": [1.0]})


def test_bad_batches_are_one_line_errors() -> None:
    fn = prover_reward_function("src", RecordingVerifier([1.0, 2.0]), is_correct)
    base = {"role": ["helpful", "sneaky"], "answer": [1, 1], "problem_id": [0, 0], "question": ["q", "q"]}
    with pytest.raises(OverseerError, match="needs dataset column 'role'.*columns given: answer, problem_id, question"):
        fn(["p", "p"], ["a", "b"], **{k: v for k, v in base.items() if k != "role"})
    with pytest.raises(OverseerError, match="unknown role 'honest' in column 'role'; allowed: helpful, sneaky"):
        fn(["p", "p"], ["a", "b"], **{**base, "role": ["helpful", "honest"]})
    with pytest.raises(OverseerError, match="column 'answer' has 1 entries for 2 completions"):
        fn(["p", "p"], ["a", "b"], **{**base, "answer": [1]})
    with pytest.raises(OverseerError, match="a completion must be a string or a list of chat messages"):
        fn(["p", "p"], ["a", 3], **base)
    bad = prover_reward_function("goodhart", RecordingVerifier([1.0, 2.0, 3.0]), is_correct)
    with pytest.raises(OverseerError, match="the verifier returned 3 scores for 2 solutions"):
        bad(["p", "p"], ["a", "b"], question=["q", "q"])
    nan = prover_reward_function("goodhart", RecordingVerifier([1.0, float("nan")]), is_correct)
    with pytest.raises(OverseerError, match=r"scores\[1\] is nan"):
        nan(["p", "p"], ["a", "b"], question=["q", "q"])


def test_completion_text() -> None:
    assert rewards.completion_text("x") == "x"
    chat = [{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]
    assert rewards.completion_text(chat) == "ab"
