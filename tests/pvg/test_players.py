"""The game's players on tiny models: the verifier never sees the role, learns its pairs' direction, pairs are fair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from overseer.errors import OverseerError
from overseer.models import ClassifierConfig, SequenceClassifier, fit_classifier
from overseer.pvg import players
from overseer.pvg.config import PVGConfig
from overseer.pvg.rewards import prover_reward_function
from overseer.pvg.tasks import load_task, split_parts
from overseer.pvg.toy import correct_solution, fact_lines, make_problems, sneaky_solution
from overseer.pvg.verifier import bradley_terry_loss, pair_loss


@pytest.fixture(scope="module")
def problems() -> list:
    return load_task("toy", 300, seed=0)


@pytest.fixture(scope="module")
def verifier_body(tmp_path_factory: pytest.TempPathFactory, problems: list) -> Path:
    return players.build_tiny(tmp_path_factory.mktemp("pvg") / "body", problems, 32, 2, seed=0)


def test_verifier_never_receives_the_role(verifier_body: Path, problems: list) -> None:
    torch.manual_seed(0)
    verifier = SequenceClassifier.build(ClassifierConfig(model=str(verifier_body), pairing="compare"), device="cpu")
    torch.nn.init.normal_(verifier.model_.head.weight, std=0.5)  # a scorer whose scores differ between texts
    seen: list[list[str]] = []
    score = players.verifier_scorer(verifier)

    def spy(questions: list[str], solutions: list[str]) -> np.ndarray:
        seen.append([players.verifier_text(q, s) for q, s in zip(questions, solutions, strict=True)])
        return score(questions, solutions)

    recorded: list[dict] = []
    reward = prover_reward_function("src", spy, players.check_answer, record=recorded.append)
    rows = players.rl_dataset(problems[:6], "both", seed=0, short=True).to_list()
    solutions = [p.metadata["solution"] for p in problems[:6]]
    flipped = {"helpful": "sneaky", "sneaky": "helpful"}
    for roles in ([r["role"] for r in rows], [flipped[r["role"]] for r in rows]):
        prompts = [players.prover_chat(r["question"], role, short=True) for r, role in zip(rows, roles, strict=True)]
        reward(prompts, solutions, role=roles, answer=[r["answer"] for r in rows],
               problem_id=[r["problem_id"] for r in rows], question=[r["question"] for r in rows])
    assert seen[0] == seen[1]  # the verifier read the same texts with every role flipped
    assert not any("helpful" in t or "sneaky" in t or "Role" in t for t in seen[0])
    np.testing.assert_array_equal(recorded[0]["scores"], recorded[1]["scores"])
    assert len(set(np.round(recorded[0]["scores"], 6))) > 1
    np.testing.assert_array_equal(recorded[0]["helpful"], ~recorded[1]["helpful"])


def test_draw_pairs_are_one_problem_one_right_one_wrong_spread_over_problems() -> None:
    samples = pd.DataFrame({
        "problem_id": ["a"] * 4 + ["b"] * 2 + ["c"] * 2,
        "question": ["qa"] * 4 + ["qb"] * 2 + ["qc"] * 2,
        "solution": ["a1", "a2", "a3", "a4", "b1", "b2", "c1", "c2"],
        "correct": [True, True, False, False, True, False, True, True],
    })
    pairs = players.draw_pairs(samples, n_pairs=3, seed=0)
    assert sorted(pairs["problem_id"]) == ["a", "a", "b"]  # c has no wrong solution; a and b share the first pass
    truth = dict(zip(samples["solution"], samples["correct"], strict=True))
    assert all(truth[g] and not truth[b] for g, b in zip(pairs["good"], pairs["bad"], strict=True))
    assert len(players.draw_pairs(samples, n_pairs=100, seed=0)) == 4 + 1  # every pair once: 2x2 for a, 1 for b


def test_verifier_learns_the_pairs_direction(tmp_path: Path, verifier_body: Path, problems: list) -> None:
    """Known answer: wrong solutions carry a planted marker line; the trained verifier must score right ones higher."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    toy = make_problems(260, seed=1)

    def rows(items: list) -> pd.DataFrame:
        return pd.DataFrame([{"problem_id": p.id, "question": p.prompt,
                              "good": correct_solution(p),
                              "bad": "Guess!\n" + sneaky_solution(p, rng)} for p in items])

    train, held_out = rows(toy[:200]), rows(toy[200:])
    cfg = PVGConfig(verifier_epochs=3, verifier_lr=3e-3, device="cpu")
    players.train_verifier(cfg, str(verifier_body), train, tmp_path / "v", seed=0)
    verifier = players.load_verifier(tmp_path / "v", cfg)
    score = players.verifier_scorer(verifier)
    good = score(held_out["question"].tolist(), held_out["good"].tolist())
    bad = score(held_out["question"].tolist(), held_out["bad"].tolist())
    assert (good > bad).mean() >= 0.9
    assert abs(np.concatenate([good, bad]).mean()) < np.concatenate([good, bad]).std()  # roughly centred


def test_no_pairs_is_a_clear_error(tmp_path: Path, verifier_body: Path) -> None:
    empty = pd.DataFrame(columns=["problem_id", "question", "good", "bad"])
    with pytest.raises(OverseerError, match="no \\(correct, incorrect\\) pair"):
        players.train_verifier(PVGConfig(device="cpu"), str(verifier_body), empty, tmp_path / "v", seed=0)


def test_score_penalty_is_in_the_training_loss(verifier_body: Path) -> None:
    """The first training loss equals Bradley-Terry plus lambda x mean squared score, computed by hand."""
    torch.manual_seed(0)
    config = ClassifierConfig(model=str(verifier_body), pairing="compare", standardize=False)
    clf = SequenceClassifier.build(config, device="cpu")
    torch.nn.init.normal_(clf.model_.head.weight, std=0.5)
    good = ["Start at 1. Add 2. Work mod 10.\n1 + 2 = 3\nAnswer: 3", "Start at 4. Add 1. Work mod 10.\n4 + 1 = 5"]
    bad = ["Start at 1. Add 2. Work mod 10.\n1 + 2 = 4\nAnswer: 4", "Start at 4. Add 1. Work mod 10.\n4 + 1 = 7"]
    va, vb = clf.scores(good), clf.scores(bad)
    lam = 0.5
    expected = float(np.mean(np.log1p(np.exp(-(va - vb)))) + lam * np.mean(np.concatenate([va, vb]) ** 2))
    fit = fit_classifier(clf, good, np.ones(2, dtype=np.float32), pair_loss, pairs=bad, lr=1e-12,
                         epochs=1, batch_size=2, use_cpu=True, score_penalty=lam, lr_scheduler="constant")
    assert fit.loss_curve[0] == pytest.approx(expected, rel=1e-4)
    with pytest.raises(OverseerError, match="pairing='compare'"):
        plain = SequenceClassifier.build(ClassifierConfig(model=str(verifier_body)), device="cpu")
        fit_classifier(plain, good, np.ones(2), pair_loss, score_penalty=0.1, use_cpu=True)


def test_the_game_trains_its_verifier_on_the_tested_bradley_terry_loss(
    tmp_path: Path, verifier_body: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loss of ``train_verifier``'s training step is ``bradley_terry_loss`` (test_verifier_loss.py) of its scores.

    One step (three pairs, one batch) at a learning rate too small to move a weight: the loss the game
    recorded must equal the tested function on the scores the verifier then gives, each pair its own group.
    """
    real_build = SequenceClassifier.build
    built: list[SequenceClassifier] = []

    def build(config: ClassifierConfig, seed: int = 0, device: str | None = None) -> SequenceClassifier:
        classifier = real_build(config, seed=seed, device=device)
        torch.nn.init.normal_(classifier.model_.head.weight, std=0.5)  # the zero head would score every text 0
        built.append(classifier)
        return classifier

    monkeypatch.setattr(SequenceClassifier, "build", build)
    torch.manual_seed(0)
    pairs = pd.DataFrame({
        "problem_id": ["a", "a", "b"],
        "question": ["Start at 1. Add 2. Work mod 10."] * 2 + ["Start at 4. Add 1. Work mod 10."],
        "good": ["1 + 2 = 3\nAnswer: 3", "1 + 2 = 3\nAnswer: 3", "4 + 1 = 5\nAnswer: 5"],
        "bad": ["1 + 2 = 4\nAnswer: 4", "1 + 2 = 9\nAnswer: 9", "4 + 1 = 7\nAnswer: 7"],
    })
    cfg = PVGConfig(device="cpu", verifier_epochs=1, verifier_lr=1e-12, score_penalty=0.5)
    out = players.train_verifier(cfg, str(verifier_body), pairs, tmp_path / "v", seed=0)
    (verifier,) = built
    good = [players.verifier_text(q, s) for q, s in zip(pairs["question"], pairs["good"], strict=True)]
    bad = [players.verifier_text(q, s) for q, s in zip(pairs["question"], pairs["bad"], strict=True)]
    scores = torch.tensor(np.concatenate([verifier.scores(good), verifier.scores(bad)]), dtype=torch.float64)
    correct = torch.tensor([True] * 3 + [False] * 3)
    expected = bradley_terry_loss(scores, correct, torch.arange(3).repeat(2), cfg.score_penalty)
    without_penalty = bradley_terry_loss(scores, correct, torch.arange(3).repeat(2), 0.0)
    assert abs(expected - without_penalty) > 0.1  # the penalty is a visible part of what is compared
    assert players.read_player(out)["final_loss"] == pytest.approx(expected.item(), rel=1e-5)


def test_splits_share_no_prompt() -> None:
    data = split_parts(load_task("toy", 500, seed=3), 100, (0.45, 0.45, 0.1), seed=3)
    parts = data.parts()
    assert [len(p) for p in parts.values()] == [100, 180, 180, 40]
    seen: set[str] = set()
    for part in parts.values():
        prompts = {p.input for p in part}
        assert not prompts & seen
        seen |= prompts
    with pytest.raises(OverseerError, match="appears twice"):
        split_parts([*data.prover, data.prover[0]], 0, (0.5, 0.5, 0.0), seed=0)


def test_arith_task_solutions_are_correct() -> None:
    for p in load_task("arith", 200, seed=0):
        assert players.check_answer(p.metadata["solution"], p.target)
        assert p.metadata["solution"].endswith(f"Answer: {p.target}")


def test_a_frozen_prover_runs_the_real_trainer_and_stops_at_the_update_behind_the_batch(
    tmp_path: Path, problems: list
) -> None:
    """lr 0 is the control: TRL runs, no weight moves; a stop hook that holds on batch 2 is reported at update 1."""
    cfg = PVGConfig(lr=0, kl_beta=0.0, prompts_per_step=2, num_generations=2, max_completion_tokens=8, device="cpu")
    init = players.build_tiny(tmp_path / "init", problems, 16, 1, seed=0)
    seen: list[int] = []

    def stop(history: list) -> bool:
        seen.append(len(history))
        return len(history) >= 2

    outcome = players.train_prover(cfg, init, problems[:8], "correctness", tmp_path / "out", seed=0, roles="helpful",
                                   steps=5, stop=stop)
    assert (outcome.steps, outcome.stopped, outcome.fired_at, seen) == (2, True, 1, [1, 2])
    assert [s["n"] for s in outcome.history] == [4, 4] and "n_correct" in outcome.history[0]
    before, _ = players.load_causal(cfg, init)
    after, _ = players.load_causal(cfg, tmp_path / "out")
    for (name, a), b in zip(before.state_dict().items(), after.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert players.read_player(tmp_path / "out")["stopped"] is True


def test_every_rounds_verifier_gets_the_same_number_of_pairs() -> None:
    assert players.allot([100, 100, 100], 150) == [50, 50, 50]
    assert players.allot([10, 100, 100], 150) == [10, 70, 70]  # a short prover's shortfall goes to the others
    assert players.allot([10, 20], 150) == [10, 20]  # fewer than the budget between them: all of it

    def samples(tag: str, problems: int) -> pd.DataFrame:
        rows = [{"problem_id": f"{tag}{p}", "question": f"q{p}", "solution": f"{tag}{p}-{k}", "correct": k < 2}
                for p in range(problems) for k in range(4)]
        return pd.DataFrame(rows)

    budget = 40
    sizes = []
    for r in (1, 2, 3, 4):
        pairs = players.round_pairs([samples(f"r{j}-", 10) for j in range(r)], budget, "equal", seed=0)
        sizes.append(len(pairs))
        assert pairs["from_round"].value_counts().max() - pairs["from_round"].value_counts().min() <= 1
    assert sizes == [budget] * 4
    pooled = players.round_pairs([samples("a", 10), samples("b", 10)], budget, "pooled", seed=0)
    assert len(pooled) == budget and set(pooled["from_round"]) == {0, 1}


def test_every_seed_shares_the_warm_up_problems_and_none_of_them_is_in_a_split() -> None:
    from overseer.pvg.game import task_data

    cfg = PVGConfig(n_problems=200, warmup_problems=100)
    games = [task_data(cfg, seed) for seed in (0, 1, 2)]
    warmup = {p.input for p in games[0].warmup}
    for data in games:
        assert {p.input for p in data.warmup} == warmup  # one warm start serves every seed
        played = {p.input for part in (data.prover, data.verifier, data.test) for p in part}
        assert len(played) == 200 and not played & warmup
    assert {p.input for p in games[0].test} != {p.input for p in games[1].test}  # the seed draws the split


def test_seeds_play_in_parallel_only_on_the_cpu_and_never_more_than_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    from overseer.pvg.run import workers_of

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert workers_of(PVGConfig(seeds=(0, 1, 2), device="cpu")) == 2
    assert workers_of(PVGConfig(seeds=(0,), device="cpu")) == 1
    assert workers_of(PVGConfig(seeds=(0, 1, 2), device="cuda")) == 1  # one accelerator: one game at a time
    assert workers_of(PVGConfig(seeds=(0, 1), workers=5)) == 2
    with pytest.raises(OverseerError, match="workers must be a whole number >= 1"):
        PVGConfig(workers=0)


def test_the_tiny_verifiers_warm_up_mixes_worked_solutions_and_the_facts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, problems: list
) -> None:
    """What the body reads: ``verifier_warmup_steps`` x 32 rows, a ``verifier_fact_share`` of them eight fact lines."""
    import overseer.models

    seen: dict = {}

    def finetune(base: str, rows: list, out: Path, train, lr_scheduler: str) -> None:
        seen.update(rows=rows, train=train, lr_scheduler=lr_scheduler)

    monkeypatch.setattr(overseer.models, "finetune_lm", finetune)
    facts = fact_lines()
    solutions = {players.verifier_text(p.input, p.metadata["solution"]) for p in problems}
    cfg = PVGConfig(verifier_warmup_steps=50, verifier_fact_share=0.25, verifier_warmup_lr=2e-3)
    out = players.warm_start_verifier_body(cfg, "base", tmp_path / "body", problems, facts, seed=0)
    rows = [r["text"] for r in seen["rows"]]
    fact_rows = [r for r in rows if r not in solutions]
    assert len(rows) == 50 * 32 and 0.18 < len(fact_rows) / len(rows) < 0.32
    assert all(len(r.split("\n")) == 8 and set(r.split("\n")) <= set(facts) for r in fact_rows)
    assert seen["train"].lr == 2e-3 and seen["train"].epochs == 1 and seen["lr_scheduler"] == "constant"
    assert players.read_player(out)["fact_share"] == 0.25
    players.warm_start_verifier_body(cfg, "base", tmp_path / "plain", problems, [], seed=0)  # a task without facts
    assert {r["text"] for r in seen["rows"]} <= solutions


def test_the_tiny_verifier_reads_its_likelihood_and_a_named_one_its_classifier_default() -> None:
    assert players.verifier_config(PVGConfig(), "body").pooling == "likelihood"
    assert players.verifier_config(PVGConfig(verifier="minilm-l6"), "minilm-l6").pooling is None
    assert players.verifier_config(PVGConfig(verifier_pooling="last"), "body").pooling == "last"
    with pytest.raises(OverseerError, match="verifier_pooling"):
        PVGConfig(verifier_pooling="max")
    with pytest.raises(OverseerError, match="verifier_fact_share must be a share in \\[0, 1\\]; got 1.5"):
        PVGConfig(verifier_fact_share=1.5)


def test_a_likelihood_verifier_on_an_encoder_is_refused_before_anything_runs(tiny_encoder: Path) -> None:
    from overseer.pvg.checks import check_run

    with pytest.raises(OverseerError, match="verifier_pooling 'likelihood'.*is an encoder: use last, mean or first"):
        check_run(PVGConfig(verifier=str(tiny_encoder), verifier_pooling="likelihood", device="cpu"))
    check_run(PVGConfig(verifier=str(tiny_encoder), device="cpu"))  # its default pooling is fine
