"""A two-round toy game end to end on tiny models, killed in round 2 and resumed without recomputing finished stages."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from overseer.cli.main import main
from overseer.pvg import players
from overseer.pvg.config import PVGConfig
from overseer.pvg.report import write_report
from overseer.pvg.run import run


def tiny_config(runs_dir: Path, **changes: Any) -> PVGConfig:
    """Two rounds of a few RL steps each, on a prover warm-started for a few seconds: a plumbing check."""
    settings: dict[str, Any] = dict(
        n_problems=120, warmup_problems=500, warmup_epochs=3, rounds=2, steps_per_round=2, attack_steps=2,
        prompts_per_step=2, num_generations=4, eval_samples=2, verifier_pairs=60, verifier_epochs=1,
        verifier_warmup_steps=10, best_of_n=2, stop_window=1, stop_min_steps=1, judge_samples=1, seeds=(0,),
        runs_dir=str(runs_dir), progress=False, device="cpu",  # one seed: in this process (stage counters patched)
    )
    settings.update(changes)
    return PVGConfig(**settings)


@pytest.fixture(scope="module")
def game(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Play the game once, interrupted at round 2's prover, then resumed; record which stages ran."""
    runs_dir = tmp_path_factory.mktemp("pvg_runs")
    cfg = tiny_config(runs_dir)
    calls: dict[str, list[str]] = {"warm_start": [], "warm_start_verifier_body": [], "train_verifier": [],
                                   "train_prover": []}
    real = {name: getattr(players, name) for name in calls}
    patch = pytest.MonkeyPatch()

    def counted(name: str, interrupt_at: str | None = None) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            where = str(args[4] if name == "train_prover" else args[3] if name == "train_verifier" else args[2])
            if interrupt_at is not None and where.endswith(interrupt_at):
                raise KeyboardInterrupt
            calls[name].append(where)
            return real[name](*args, **kwargs)
        return wrapper

    for name in calls:
        patch.setattr(players, name, counted(name, "round-2/prover" if name == "train_prover" else None))
    try:
        started = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            run(cfg)
        first = {k: list(v) for k, v in calls.items()}
        for name in calls:
            calls[name].clear()
            patch.setattr(players, name, counted(name))
        result = run(cfg)
        wall = time.perf_counter() - started  # measured on 2 cores: ~60 s for both halves together
    finally:
        patch.undo()
    return {"cfg": cfg, "result": result, "first": first, "second": calls, "wall": wall, "runs_dir": runs_dir}


def test_two_round_game_end_to_end(game: dict[str, Any]) -> None:
    result = game["result"]
    record = json.loads((result.path / "metrics.json").read_text())
    assert {"round_0", "round_1", "round_2", "baseline_accuracy"} <= set(record["metrics"])
    for r in (0, 1, 2):
        assert {"helpful_accuracy", "sneaky_success", "verifier_auroc", "completeness", "soundness"} <= set(
            record["metrics"][f"round_{r}"])
    samples = pd.read_parquet(result.path / "samples.parquet")
    assert set(samples["split"]) == {"verifier", "test"}
    assert set(samples.loc[samples["split"] == "test", "round"]) == {-1, 0, 1, 2}
    figures = {p.name for p in (result.path / "figures").iterdir()}
    assert {"by_round.png", "scores_over_steps.png", "accuracy_vs_legibility.png", "attack_steps.png"} <= figures
    # every attacker that ran left its per-step records, the ones its criterion was read from
    steps = pd.read_parquet(result.path / "attack_history.parquet")
    ran = {a["round"] for a in record["attacks"] if a["status_per_seed"][0] in ("censored", "exploited")}
    assert set(steps["round"]) == ran and set(steps["attack"]) <= {"src"}
    for _, group in steps.groupby(["seed", "round"]):
        assert list(group["step"]) == list(range(len(group))) and len(group) <= game["cfg"].attack_steps
    for r in (1, 2):
        for part in ("verifier", "prover"):
            assert (result.path / "players" / "seed-0" / f"round-{r}" / part / "player.json").is_file()
    assert not result.path.with_name(f".{result.path.name}.work").exists()  # removed once published
    kept = result.path / "players" / "seed-0"
    verifier = players.load_verifier(kept / "round-2" / "verifier", game["cfg"])  # loads without the work dir
    assert verifier.scores(["Start at 1. Add 2. Work mod 10.\n1 + 2 = 3\nAnswer: 3"]).shape == (1,)
    shared = result.path / "players"  # one warm start for every seed
    assert (kept / "judge" / "classifier").is_dir() and (shared / "warm-start" / "player.json").is_file()
    # the baseline trains for the game's whole budget (2 rounds x 2 steps), the judge on its own body and data
    assert players.read_player(kept / "baseline")["steps"] == 4
    judge = players.read_player(kept / "judge")
    assert judge["base"].endswith("judge-body") and judge["data"] == "base prover, prover split"
    judge_config = json.loads((kept / "judge" / "classifier" / "classifier.json").read_text())["config"]
    assert judge_config["model"] == str((shared / "judge-body").resolve())  # its own body, as kept in the run
    # every round's verifier trains on the same number of pairs (at most 60, capped by what round 1 can draw),
    # so on the same number of gradient steps
    trained = [players.read_player(kept / f"round-{r}" / "verifier") for r in (1, 2)]
    assert 0 < trained[0]["pairs"] == trained[1]["pairs"] <= 60
    assert trained[0]["gradient_steps"] == trained[1]["gradient_steps"]


def test_resume_recomputes_nothing_finished(game: dict[str, Any]) -> None:
    first, second = game["first"], game["second"]
    # prover and the judge's own body, and the tiny verifier's body (solutions and facts), once each
    assert [p.split("/")[-1] for p in first["warm_start"]] == ["prover", "judge-body"] and second["warm_start"] == []
    assert [p.split("/")[-1] for p in first["warm_start_verifier_body"]] == ["verifier-body"]
    assert second["warm_start_verifier_body"] == []
    assert [p.split("/")[-2] for p in first["train_verifier"]] == ["round-1", "round-2"]
    assert second["train_verifier"] == []
    assert [p.split("/")[-2] for p in first["train_prover"] if p.endswith("/prover")] == ["round-1"]
    assert any(p.endswith("round-2/prover") for p in second["train_prover"])
    assert not any(p.endswith("round-1/prover") for p in second["train_prover"])
    again = run(game["cfg"])
    assert again.reused and again.path == game["result"].path


def test_report_shows_rounds_baseline_and_attacks(game: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    text, _ = write_report([game["result"].path])
    assert "| 2 |" in text and "correctness-only baseline accuracy" in text and "src:" in text
    assert main(["pvg", "report", str(game["result"].path)]) == 0
    assert "helpful acc" in capsys.readouterr().out


def test_goodhart_game_has_no_roles(tmp_path: Path) -> None:
    from overseer.pvg.game import Game

    assert Game(tiny_config(tmp_path, reward="goodhart"), 0, tmp_path / "g").roles == ("helpful",)
    assert Game(tiny_config(tmp_path), 0, tmp_path / "s").roles == ("helpful", "sneaky")


def test_cli_refuses_bad_input_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, needle in (
        (["pvg", "run", "--reward", "nope"], "unknown reward 'nope'"),
        (["pvg", "run", "--task", "chess"], "chess"),
        (["pvg", "run", "--prover", "no-such-model-xyz"], "no-such-model-xyz"),
        (["pvg", "run", "--attacks", "src,bribe"], "unknown attack reward 'bribe'"),
        (["pvg", "run", "--lr", "-1"], "lr must be a number >= 0; got -1"),
        (["pvg", "run", "--best-of-n", "3"], "best_of_n must be even"),
        (["pvg", "run", "--accept-rate", "1.5"], "accept_rate must be a share in (0, 1]"),
        (["pvg", "report", str(tmp_path)], str(tmp_path)),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], (argv, err)


@pytest.mark.slow
def test_two_seeds_in_two_worker_processes_share_one_warm_start(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, rounds=1, seeds=(0, 1), workers=2, baseline=False, attacks=())
    result = run(cfg)
    samples = pd.read_parquet(result.path / "samples.parquet")
    assert set(samples["seed"]) == {0, 1}
    for seed in (0, 1):
        assert (result.path / "players" / f"seed-{seed}" / "round-1" / "prover" / "player.json").is_file()
    assert not (result.path / "players" / "seed-1" / "warm-start").exists()  # one warm start, kept once
    assert (result.path / "players" / "warm-start" / "player.json").is_file()
    # the seeds drew different test splits from the one pool
    tests = samples[samples["split"] == "test"].groupby("seed")["problem_id"].agg(frozenset)
    assert tests[0] != tests[1]


def test_attack_history_has_one_row_per_step_of_every_attacker() -> None:
    from overseer.pvg.run import attack_history

    step = {"reward": -1.0, "sneaky_accuracy": 0.5}
    attacks = [{"seed": 0, "round": 1, "reward": "src", "history": [step, {**step, "sneaky_accuracy": 0.25}]},
               {"seed": 1, "round": 2, "reward": "cgc", "history": [step]},
               {"seed": 0, "round": 3, "reward": "src", "reason": "no helpful-correct test solution"}]
    rows = attack_history(attacks)
    assert rows[["seed", "round", "attack", "step"]].values.tolist() == [[0, 1, "src", 0], [0, 1, "src", 1],
                                                                           [1, 2, "cgc", 0]]
    assert rows["sneaky_accuracy"].tolist() == [0.5, 0.25, 0.5] and rows["reward"].tolist() == [-1.0] * 3
    assert list(attack_history([]).columns) == ["seed", "round", "attack", "step"]
