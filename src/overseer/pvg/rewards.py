"""The prover's rewards in the prover-verifier game (Kirchner et al. 2024, "Prover-Verifier Games improve legibility").

A helpful prover should write correct solutions that the verifier finds convincing; a sneaky prover
should write incorrect solutions that the verifier finds convincing. Each formula below turns the
frozen verifier's scores ``V`` (one per solution), whether each solution is correct, and each
solution's role into one reward per solution:

* ``src``: signed relative convincingness, the paper's main reward (Section 2.2);
* ``cgc``: correctness-gated convincingness, the paper's alternative reward;
* ``goodhart``: the verifier's score itself, with no roles (the paper's Goodhart ablation);
* ``correctness``: 1 for a correct answer, else 0: plain RL on correctness, the baseline whose
  solutions lose legibility (the "legibility tax").

The formulas are registered under the ``pvg_reward`` kind (:func:`reward_names` lists them) and
:func:`prover_reward_function` turns any of them into a TRL reward function.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from overseer._registry import lookup, names, register
from overseer.errors import OverseerError

ROLES: tuple[str, ...] = ("helpful", "sneaky")
"""The prover's two roles, as written in the role column."""

_TIE = 1e-12  # a centred score this small, relative to the group's scale, is rounding error: a tie


def _scores(scores: Any) -> np.ndarray:
    """The verifier scores as a finite 1-D float array, or a one-line error."""
    values = np.asarray(scores, dtype=float)
    if values.ndim != 1:
        raise OverseerError(f"scores must be a 1-D sequence (one score per solution); got shape {values.shape}")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise OverseerError(
            f"scores[{bad[0]}] is {values[bad[0]]}; the verifier must give a finite score to every solution"
        )
    return values


def _flags(values: Any, name: str, n: int | None = None) -> np.ndarray:
    """A 1-D boolean array from booleans or 0/1 values, of length ``n`` when given, or a one-line error."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise OverseerError(f"{name} must be a 1-D sequence of booleans; got shape {array.shape}")
    if n is not None and len(array) != n:
        raise OverseerError(f"{name} has {len(array)} entries but there are {n} scores; give one per solution")
    if array.dtype != bool:
        if array.dtype.kind not in "iuf" or not np.isin(array, (0, 1)).all():
            raise OverseerError(f"{name} must hold booleans (or 0/1); got {array.tolist()!r}")
        array = array.astype(bool)
    return array


def _group_index(groups: Any, n: int) -> np.ndarray:
    """Each solution's group as an integer 0..G-1, or a one-line error."""
    array = np.asarray(groups)
    if array.ndim != 1:
        raise OverseerError(f"groups must be a 1-D sequence (one group id per solution); got shape {array.shape}")
    if len(array) != n:
        raise OverseerError(f"groups has {len(array)} entries but there are {n} scores; give one per solution")
    try:
        _, index = np.unique(array, return_inverse=True)
    except TypeError as err:
        raise OverseerError(f"group ids must be comparable values of one type (ints or strings); {err}") from None
    return index.reshape(-1)


@register("pvg_reward", "src")
def src_rewards(scores: Any, correct: Any, helpful: Any, groups: Any) -> np.ndarray:
    r"""Signed relative convincingness (SRC), the prover's reward in Kirchner et al. (2024), Section 2.2.

    Within each group (one group per problem and role), the verifier scores are centred,
    :math:`V' = V - \mathrm{mean}_{\text{group}}(V)`, and

    .. math::

        R_{\text{SRC}} = \begin{cases} (2c - 1)(2h - 1)\,V' & \text{if } V' > 0 \\ -1 & \text{otherwise}\end{cases}

    where :math:`c` is 1 for a correct solution and :math:`h` is 1 for the helpful role. A solution
    more convincing than its group's average earns its relative score when its correctness matches
    its role (helpful and correct, or sneaky and incorrect) and loses it when it does not; a
    solution at or below its group's average gets -1 either way. The gate is on the centred score
    :math:`V'`, not the raw :math:`V`. A group of one solution has :math:`V' = 0`, so it always gets
    -1: sample several solutions per problem and role. Differences at rounding level (identical
    scores whose mean is not exactly representable) count as :math:`V' = 0`.

    Args:
        scores: the verifier's score of each solution.
        correct: whether each solution's final answer is correct.
        helpful: whether each solution was written in the helpful role (False: sneaky).
        groups: one group id per solution; the same id for the solutions of one problem and role.

    Returns:
        One reward per solution, as a float array.
    """
    values = _scores(scores)
    n = len(values)
    is_correct, is_helpful = _flags(correct, "correct", n), _flags(helpful, "helpful", n)
    index = _group_index(groups, n)
    if n == 0:
        return np.zeros(0)
    means = np.bincount(index, weights=values) / np.bincount(index)
    centred = values - means[index]
    scale = np.maximum(1.0, np.abs(means[index]))
    centred[np.abs(centred) <= _TIE * scale] = 0.0
    sign = (2.0 * is_correct - 1.0) * (2.0 * is_helpful - 1.0)
    return np.where(centred > 0, sign * centred, -1.0)


@register("pvg_reward", "cgc")
def cgc_rewards(scores: Any, correct: Any, helpful: Any, penalty: float = -2.0) -> np.ndarray:
    r"""Correctness-gated convincingness (CGC), the alternative prover reward of Kirchner et al. (2024).

    .. math::

        R_{\text{CGC}} = \begin{cases} V & \text{if } (h \wedge c) \vee (\neg h \wedge \neg c) \\
        V_0 & \text{otherwise}\end{cases}

    The verifier's score :math:`V` when the solution's correctness matches its role (helpful and
    correct, or sneaky and incorrect), else the constant penalty :math:`V_0`. The paper picks
    :math:`V_0` below every score the verifier gives, so that a mismatch never pays more than a
    match; a Bradley-Terry verifier's scores are unbounded, so a matching solution's reward is
    floored at :math:`V_0` here (:math:`\max(V, V_0)`): a matching solution scored -3 earns -2, not
    less than a mismatch (a departure listed in docs/pvg.md).

    Args:
        scores: the verifier's score of each solution.
        correct: whether each solution's final answer is correct.
        helpful: whether each solution was written in the helpful role (False: sneaky).
        penalty: :math:`V_0`, the reward of a solution whose correctness does not match its role,
            and the floor of a matching one's.

    Returns:
        One reward per solution, as a float array.
    """
    values = _scores(scores)
    n = len(values)
    is_correct, is_helpful = _flags(correct, "correct", n), _flags(helpful, "helpful", n)
    if isinstance(penalty, bool) or not isinstance(penalty, int | float) or not np.isfinite(penalty):
        raise OverseerError(f"penalty must be a finite number; got {penalty!r}")
    return np.where(is_correct == is_helpful, np.maximum(values, float(penalty)), float(penalty))


@register("pvg_reward", "goodhart")
def goodhart_rewards(scores: Any) -> np.ndarray:
    r"""The verifier's score itself, :math:`R = V`: the Goodhart ablation of Kirchner et al. (2024).

    With no role and no correctness check the prover simply maximises the verifier's score, which
    shows how quickly a prover learns to exploit a fixed verifier.

    Args:
        scores: the verifier's score of each solution.

    Returns:
        One reward per solution (a float copy of the scores).
    """
    return _scores(scores).copy()


@register("pvg_reward", "correctness")
def correctness_rewards(correct: Any) -> np.ndarray:
    r"""The correctness reward, :math:`R = c` (1.0 for a correct final answer, else 0.0).

    Kirchner et al. (2024) train a prover on correctness alone as the baseline: its accuracy rises
    but its solutions become harder for time-limited humans to check, the "legibility tax".

    Args:
        correct: whether each solution's final answer is correct.

    Returns:
        One reward per solution, as a float array.
    """
    return _flags(correct, "correct").astype(float)


def reward_names() -> list[str]:
    """The names of the registered prover rewards, sorted (``cgc``, ``correctness``, ``goodhart``, ``src``)."""
    return names("pvg_reward")


def get_reward(kind: str) -> Callable[..., np.ndarray]:
    """The reward formula registered as ``kind``; an unknown name raises a one-line error listing the others."""
    return lookup("pvg_reward", kind)


# --------------------------------------------------------------------------- TRL reward functions


def completion_text(completion: Any) -> str:
    """The text of one completion: a string as it is, or the joined contents of a list of chat messages.

    TRL passes completions as strings for plain-text datasets and as ``[{"role": "assistant",
    "content": ...}]`` for conversational ones.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and all(isinstance(m, Mapping) for m in completion):
        parts = [m.get("content", "") for m in completion]
        if all(isinstance(p, str) for p in parts):
            return "".join(parts)
    raise OverseerError(
        f"a completion must be a string or a list of chat messages with text content; got {completion!r:.80}"
    )


def _prompt_text(prompt: Any) -> str:
    """The problem text of one prompt: a string as it is, or the last user message of a chat."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence) and all(isinstance(m, Mapping) for m in prompt):
        users = [m.get("content") for m in prompt if m.get("role") == "user"]
        if users and isinstance(users[-1], str):
            return users[-1]
    raise OverseerError(f"a prompt must be a string or a chat with a user message; got {prompt!r:.80}")


def _column(columns: Mapping[str, Any], name: str, n: int, why: str) -> list[Any]:
    """Dataset column ``name`` as a list with one entry per completion, or a one-line error."""
    if name not in columns:
        given = sorted(k for k in columns if isinstance(columns[k], list | tuple))
        raise OverseerError(
            f"the reward needs dataset column {name!r} ({why}); columns given: {', '.join(given) or '(none)'}"
        )
    values = list(columns[name])
    if len(values) != n:
        raise OverseerError(f"column {name!r} has {len(values)} entries for {n} completions; give one per completion")
    return values


def _helpful(roles: list[Any], column: str) -> np.ndarray:
    """True for ``helpful``, False for ``sneaky``; any other role is a one-line error."""
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise OverseerError(f"unknown role {bad[0]!r} in column {column!r}; allowed: {', '.join(ROLES)}")
    return np.array([r == "helpful" for r in roles], dtype=bool)


def prover_reward_function(
    kind: str,
    verifier_score: Callable[[list[str], list[str]], Any],
    check_answer: Callable[[str, Any], bool],
    role_column: str = "role",
    answer_column: str = "answer",
    problem_column: str = "problem_id",
    question_column: str | None = "question",
    reward_args: Mapping[str, Any] | None = None,
    record: Callable[[dict[str, np.ndarray]], None] | None = None,
) -> Callable[..., list[float]]:
    """The prover's reward ``kind`` as a TRL reward function ``fn(prompts, completions, **columns) -> list[float]``.

    TRL's ``GRPOTrainer`` and ``RLOOTrainer`` call reward functions with the batch's prompts and
    completions (strings, or lists of chat messages) and every other dataset column as a keyword
    list with one entry per completion (plus extras such as ``completion_ids`` and
    ``trainer_state``, which are ignored). The returned function reads, as its reward needs them:

    * ``question_column``: the problem text shown to the verifier. The verifier is called as
      ``verifier_score(questions, solutions)`` and never sees the role, so the prover's prompt,
      which states the role, must not be what it reads. With ``question_column=None`` the prompt
      itself is used (its last user message for chats): only safe when prompts do not reveal the role;
    * ``answer_column``: the reference answer, checked with ``check_answer(solution, answer)``;
    * ``role_column``: ``helpful`` or ``sneaky``;
    * ``problem_column``: the problem's id; SRC centres scores within each (problem id, role).

    The verifier is not called for ``correctness``, and answers are not checked for ``goodhart``.
    SRC's groups are formed within the batch the trainer passes, so each problem and role needs
    several completions in one call (GRPO's ``num_generations``).

    Args:
        kind: a registered reward (:func:`reward_names`).
        verifier_score: the frozen verifier: problem texts and solutions in, one score per solution out.
        check_answer: whether a solution's final answer equals the reference answer.
        role_column: dataset column with each prompt's role.
        answer_column: dataset column with each problem's reference answer.
        problem_column: dataset column with each problem's id.
        question_column: dataset column with each problem's text, or None to use the prompt.
        reward_args: extra keyword arguments of the reward formula (``{"penalty": -3.0}`` for ``cgc``).
        record: called once per batch with what the reward computed (``scores``, ``correct``,
            ``helpful``, ``groups`` as it needed them, and ``rewards``): the game's bookkeeping
            (score curves, the stopping rule) reads it without scoring anything twice.

    Returns:
        A plain function named ``pvg_<kind>`` (TRL logs rewards by the function's name).
    """
    formula = get_reward(kind)
    params = inspect.signature(formula).parameters
    inputs = ("scores", "correct", "helpful", "groups")
    extra = dict(reward_args or {})
    for key in extra:
        if key in inputs or key not in params:
            allowed = [p for p in params if p not in inputs]
            raise OverseerError(
                f"reward {kind!r} takes no argument {key!r}; allowed: {', '.join(allowed) or '(none)'}"
            )

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
        n = len(completions)
        if len(prompts) != n:
            raise OverseerError(f"the reward needs one prompt per completion; got {len(prompts)} and {n}")
        solutions = [completion_text(c) for c in completions]
        args: dict[str, Any] = {}
        if "scores" in params:
            if question_column is None:
                questions = [_prompt_text(p) for p in prompts]
            else:
                questions = [str(q) for q in _column(columns, question_column, n, "the problem shown to the verifier")]
            args["scores"] = np.asarray(verifier_score(questions, solutions), dtype=float).reshape(-1)
            if len(args["scores"]) != n:
                raise OverseerError(f"the verifier returned {len(args['scores'])} scores for {n} solutions")
        if "correct" in params:
            answers = _column(columns, answer_column, n, "the reference answers")
            args["correct"] = np.array([bool(check_answer(s, a)) for s, a in zip(solutions, answers, strict=True)])
        if "helpful" in params or "groups" in params:
            roles = _column(columns, role_column, n, "each prompt's role")
            args["helpful"] = _helpful(roles, role_column)
        if "groups" in params:
            problems = _column(columns, problem_column, n, "each problem's id")
            ids: dict[tuple[str, str], int] = {}
            pairs = zip(problems, roles, strict=True)
            args["groups"] = np.array([ids.setdefault((repr(p), r), len(ids)) for p, r in pairs], dtype=int)
        values = formula(**{k: v for k, v in args.items() if k in params}, **extra)
        if record is not None:
            seen = dict(args)
            if "correct" not in seen and answer_column in columns:
                answers = _column(columns, answer_column, n, "the reference answers")
                seen["correct"] = np.array([bool(check_answer(s, a)) for s, a in zip(solutions, answers, strict=True)])
            if "helpful" not in seen and role_column in columns:
                seen["helpful"] = _helpful(_column(columns, role_column, n, "each prompt's role"), role_column)
            record({**seen, "rewards": np.asarray(values, dtype=float)})
        return [float(v) for v in values]

    reward.__name__ = reward.__qualname__ = f"pvg_{kind}"
    return reward
