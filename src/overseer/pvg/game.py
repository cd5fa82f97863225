"""The prover-verifier game, round by round, with every finished stage kept on disk (Kirchner et al. 2024).

One seed's game, in order (each stage is a directory or file written atomically under the game's
work directory, so a killed run resumes at the stage in flight and recomputes nothing finished):

1. ``players/`` (one for every seed of a run): build (tiny) and warm-start the prover on correct
   solutions of the warm-up problems; for a tiny verifier, warm-start its body and the judge's as
   language models on the same solutions.
2. ``round-0/``: the base prover's solutions on the verifier split.
3. For each round ``r = 1..R``:
   ``verifier/``: a verifier trained from its initial weights on ``verifier_pairs`` (correct,
   incorrect) pairs from the solutions of provers ``0..r-1`` (an equal share per prover by
   default; the same number of pairs, so of gradient steps, in every round);
   ``prover/``: a prover trained from the warm-started weights by RL against that frozen verifier
   (roles drawn per prompt, none in a Goodhart game; the step budget or the stopping rule of
   :mod:`overseer.pvg.criteria` ends the round);
   ``eval.parquet``: the new prover's solutions on the test split in both roles, scored by the
   round's verifier and the legibility judge; ``samples.parquet``: its solutions on the verifier
   split (next rounds' verifier data); ``attack-<reward>.json``: a sneaky-only prover trained
   against the frozen verifier, and the update at which it first fooled it by the paper's
   criterion (censored when the budget ran out first).
4. ``baseline/``: the correctness-only prover trained for the game's whole budget
   (``rounds x steps_per_round`` steps), evaluated on the test split.
5. ``judge/``: the legibility proxy, a classifier that reads only the first ``judge_tokens``
   tokens of a solution, on its own body (a tiny one warm-started apart from the verifier's) and
   trained on its own data: the base prover's solutions on the prover split, which no verifier reads.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from overseer._storage import atomic_directory, atomic_file, atomic_write_text
from overseer.errors import OverseerError
from overseer.pvg import players
from overseer.pvg.config import TINY, PVGConfig
from overseer.pvg.criteria import criteria_of
from overseer.pvg.tasks import TaskData, load_task, split_parts, task_facts

_STARTED = time.perf_counter()


def _say(cfg: PVGConfig, text: str) -> None:
    """One progress line with the seconds since the process started (``--no-progress`` silences it)."""
    if cfg.progress:
        print(f"[pvg {time.perf_counter() - _STARTED:6.0f} s] {text}", flush=True)


WARMUP_SEED = 0
"""Seed of the warm-started players every seed's game starts from (built once per run)."""


def task_data(cfg: PVGConfig, seed: int) -> TaskData:
    """The seed's problems: one pool for every seed (its first problems warm-start the players), split by the seed."""
    problems = load_task(cfg.task, cfg.warmup_problems + cfg.n_problems, WARMUP_SEED, cfg.data_path)
    return split_parts(problems, cfg.warmup_problems, tuple(cfg.split), seed)


def players_of(cfg: PVGConfig, players_dir: Path) -> dict[str, str]:
    """Where the warm-started players are: the prover, and the verifier's and judge's bases (tiny or named)."""
    tiny = cfg.verifier == TINY
    return {"prover": str(players_dir / "prover"),
            "verifier": str(players_dir / "verifier-body") if tiny else cfg.verifier,
            "judge": str(players_dir / "judge-body") if tiny else cfg.verifier}


def warm_start_players(cfg: PVGConfig, players_dir: Path) -> dict[str, float]:
    """Build and warm-start the prover (and tiny verifier and judge bodies) once, for every seed's game.

    The warm-up problems are the same for every seed (the pool's first ``warmup_problems``), so the
    seeds' games start from the same players, as the paper's rounds start from one supervised
    prover; the seeds differ in their splits, verifiers, RL and attackers. Returns seconds spent.
    """
    warmup = task_data(cfg, WARMUP_SEED).warmup
    where = players_of(cfg, players_dir)
    seconds = 0.0
    if not Path(where["prover"]).exists():
        t = time.perf_counter()
        _say(cfg, f"warm-starting the prover on {len(warmup)} correct solutions")
        base: str | Path = cfg.prover
        if cfg.prover == TINY:
            base = players.build_tiny(players_dir / "prover-random", warmup, cfg.prover_width, cfg.prover_layers,
                                      WARMUP_SEED)
        players.warm_start(cfg, str(base), Path(where["prover"]), warmup, WARMUP_SEED)
        seconds += time.perf_counter() - t
    if cfg.verifier != TINY:
        return {"warm_start": seconds}
    for name, offset in (("verifier", 1), ("judge", 2)):
        if Path(where[name]).exists():
            continue
        t = time.perf_counter()
        facts = task_facts(cfg.task) if name == "verifier" else []
        reads = "the worked solutions and the task's facts" if facts else "the worked solutions"
        _say(cfg, f"warm-starting the tiny {name}'s body on {reads}")
        random = players.build_tiny(players_dir / f"{name}-random", warmup, cfg.verifier_width, cfg.verifier_layers,
                                    WARMUP_SEED + offset)
        if name == "verifier":  # the verifier's body also reads the task's facts; the judge only solutions
            players.warm_start_verifier_body(cfg, str(random), Path(where[name]), warmup, facts,
                                             WARMUP_SEED + offset)
        else:
            players.warm_start(cfg, str(random), Path(where[name]), warmup, WARMUP_SEED + offset, lm_only=True)
        seconds += time.perf_counter() - t
    return {"warm_start": seconds}


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    with atomic_file(path) as tmp:
        df.to_parquet(tmp, index=False)


class Game:
    """One seed's game in ``work`` (see the module docstring for the stages and their files)."""

    def __init__(self, cfg: PVGConfig, seed: int, work: Path, players_dir: Path | None = None):
        self.cfg = cfg
        self.seed = seed
        self.work = Path(work)
        self.players_dir = Path(players_dir) if players_dir is not None else self.work / "players"
        self.data = task_data(cfg, seed)
        self.timings: dict[str, float] = {}
        self.criteria = criteria_of(cfg)
        # the Goodhart game has no roles: its prover reads the helpful prompt, and only that is evaluated
        self.roles: tuple[str, ...] = ("helpful",) if cfg.reward == "goodhart" else players.ROLES

    # -- players ----------------------------------------------------------------------------------

    def _timed(self, name: str, started: float) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started

    @property
    def prover_init(self) -> Path:
        """The warm-started prover every round's RL starts from."""
        return Path(players_of(self.cfg, self.players_dir)["prover"])

    @property
    def verifier_base(self) -> str:
        """The verifier's initial weights: the warm-started tiny body, or the named model."""
        return players_of(self.cfg, self.players_dir)["verifier"]

    @property
    def judge_base(self) -> str:
        """The judge's initial weights: a tiny body of its own, or the verifier's (untrained) named model."""
        return players_of(self.cfg, self.players_dir)["judge"]

    def players(self) -> None:
        """The warm-started players (built here unless a run built them for every seed first)."""
        for key, value in warm_start_players(self.cfg, self.players_dir).items():
            self.timings[key] = self.timings.get(key, 0.0) + value

    # -- stages -----------------------------------------------------------------------------------

    def samples_of(self, r: int) -> pd.DataFrame:
        """Prover ``r``'s solutions on the verifier split (written once, then read)."""
        path = self.work / f"round-{r}" / "samples.parquet"
        if not path.exists():
            t = time.perf_counter()
            prover = self.prover_init if r == 0 else self.work / f"round-{r}" / "prover"
            df = players.sample_solutions(self.cfg, prover, self.data.verifier, self.roles,
                                          self.cfg.verifier_samples, seed=1000 * self.seed + r)
            df.insert(0, "round", r)
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_parquet(df, path)
            self._timed("sampling", t)
        return pd.read_parquet(path)

    def verifier_pairs(self, r: int) -> pd.DataFrame:
        """Round ``r``'s verifier data: ``verifier_pairs`` pairs from provers ``0..r-1`` (equal shares, or pooled)."""
        cfg = self.cfg
        return players.round_pairs([self.samples_of(j) for j in range(r)], self.pair_budget(),
                                   cfg.verifier_round_weight, seed=10_000 * self.seed + 100 * r)

    def pair_budget(self) -> int:
        """Pairs of every round's verifier: ``verifier_pairs``, or fewer when the base prover alone has fewer.

        Round 1 can draw only on the base prover's solutions; capping every round at what round 1
        gets keeps the verifier's optimisation (pairs x epochs) the same in every round.
        """
        first = players.round_pairs([self.samples_of(0)], self.cfg.verifier_pairs, self.cfg.verifier_round_weight,
                                    seed=10_000 * self.seed + 100)
        return len(first)

    def verifier(self, r: int) -> Path:
        """Round ``r``'s verifier, trained from its initial weights on pairs from provers ``0..r-1``."""
        path = self.work / f"round-{r}" / "verifier"
        if not path.exists():
            t = time.perf_counter()
            pairs = self.verifier_pairs(r)
            _say(self.cfg, f"seed {self.seed} round {r}: training the verifier on {len(pairs)} pairs")
            players.train_verifier(self.cfg, self.verifier_base, pairs, path, seed=100 * self.seed + r)
            self._timed("verifier", t)
        return path

    def prover(self, r: int) -> Path:
        """Round ``r``'s prover, trained by RL from the warm-started weights against round ``r``'s verifier."""
        path = self.work / f"round-{r}" / "prover"
        if not path.exists():
            t = time.perf_counter()
            cfg = self.cfg
            verifier = players.load_verifier(self.verifier(r), cfg) if cfg.reward != "correctness" else None
            _say(cfg, f"seed {self.seed} round {r}: prover RL ({cfg.rl}, reward {cfg.reward}, "
                      f"up to {cfg.steps_per_round} steps)")
            stop = None
            if cfg.stop_rule and cfg.reward != "correctness":
                def stop(history: Any) -> bool:
                    return self.criteria.round_over(cfg.reward, history)
            players.train_prover(cfg, self.prover_init, self.data.prover, cfg.reward, path,
                                 seed=100 * self.seed + r, verifier=verifier, stop=stop,
                                 roles="helpful" if cfg.reward == "goodhart" else "both")
            self._timed("prover_rl", t)
        return path

    def evaluate(self, name: str, prover: Path, verifier_dir: Path | None, roles: tuple[str, ...]) -> pd.DataFrame:
        """Test-split solutions of ``prover`` in ``roles``, scored by the verifier and the judge."""
        path = self.work / name / "eval.parquet"
        if not path.exists():
            t = time.perf_counter()
            cfg = self.cfg
            df = players.sample_solutions(cfg, prover, self.data.test, roles, cfg.eval_samples,
                                          seed=7_000 + self.seed)
            if verifier_dir is not None:
                verifier = players.load_verifier(verifier_dir, cfg)
                df["score"] = players.verifier_scorer(verifier)(df["question"].tolist(), df["solution"].tolist())
                del verifier
            judge = players.load_verifier(self.judge(), cfg)
            df["judge_p_correct"] = judge.predict_proba(
                [players.verifier_text(q, s) for q, s in zip(df["question"], self.truncated(df["solution"]),
                                                             strict=True)], batch_size=64)
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_parquet(df, path)
            self._timed("evaluation", t)
        return pd.read_parquet(path)

    def truncated(self, solutions: Any) -> list[str]:
        """Each solution cut to its first ``judge_tokens`` tokens (of the judge's tokenizer)."""
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(Path(self.judge()) / "classifier" / "tokenizer"))
        return _first_tokens(tok, solutions, self.cfg.judge_tokens)

    def judge(self) -> Path:
        """The legibility proxy: a classifier of correctness that sees only a solution's first K tokens.

        Independent of the verifiers: its own body (for tiny players) and its own data, the base
        prover's solutions on the prover split, which no verifier is trained on.
        """
        path = self.work / "judge"
        if path.exists():
            return path
        t = time.perf_counter()
        from overseer.models import ClassifierConfig, SequenceClassifier, fit_classifier

        cfg = self.cfg
        samples = self.judge_samples()
        base = self.judge_base
        _say(cfg, f"seed {self.seed}: training the legibility judge (first {cfg.judge_tokens} tokens)")
        device = "cpu" if players._use_cpu(cfg) else cfg.device
        judge = SequenceClassifier.build(ClassifierConfig(model=base, num_layers=cfg.verifier_num_layers,
                                                          lora=cfg.verifier_lora), seed=self.seed + 2, device=device)
        cut = _first_tokens(judge.lm.tokenizer, samples["solution"], cfg.judge_tokens)
        texts = [players.verifier_text(q, s) for q, s in zip(samples["question"], cut, strict=True)]
        labels = samples["correct"].to_numpy().astype(np.int64)

        def cross_entropy(logits: Any, targets: Any, step_frac: float) -> Any:
            import torch.nn.functional as F

            return F.cross_entropy(logits, targets)

        fit_classifier(judge, texts, labels, cross_entropy, lr=cfg.verifier_lr, epochs=cfg.verifier_epochs,
                       batch_size=32, seed=self.seed + 2, use_cpu=players._use_cpu(cfg))
        with atomic_directory(path) as tmp:
            judge.save(tmp / "classifier")
            players._write_player(tmp, kind="judge", base=base, judge_tokens=cfg.judge_tokens, examples=len(texts),
                                  data="base prover, prover split")
        self._timed("judge", t)
        return path

    def judge_samples(self) -> pd.DataFrame:
        """The judge's training data: the base prover's solutions on the prover split (no verifier reads them)."""
        path = self.work / "judge-samples.parquet"
        if not path.exists():
            t = time.perf_counter()
            df = players.sample_solutions(self.cfg, self.prover_init, self.data.prover, self.roles,
                                          self.cfg.judge_samples, seed=3_000 + self.seed)
            _write_parquet(df, path)
            self._timed("sampling", t)
        return pd.read_parquet(path)

    def attack(self, r: int, kind: str, reference: float | None) -> dict[str, Any]:
        """An attacker of reward ``kind`` against round ``r``'s frozen verifier (sneaky only; Goodhart: no role).

        It succeeds by the paper's criterion (:meth:`~overseer.pvg.criteria.Criteria.attack_succeeded`)
        read over the last ``stop_window`` steps, with ``reference`` the mean score of the round's
        helpful-correct test solutions; ``steps_to_exploit`` counts the updates behind the batch on
        which it first held (TRL scores a batch before its update), and a run whose budget ran out
        first is ``censored``.
        """
        path = self.work / f"round-{r}" / f"attack-{kind}.json"
        if path.exists():
            return json.loads(path.read_text())
        t = time.perf_counter()
        cfg = self.cfg
        if reference is None and kind != "goodhart":
            result = {"reward": kind, "round": r, "reference": None, "steps_to_exploit": None, "censored": None,
                      "budget": cfg.attack_steps,
                      "reason": "no helpful-correct test solution to set the reference score"}
        else:
            _say(cfg, f"seed {self.seed} round {r}: {kind} attacker against the frozen verifier")
            verifier = players.load_verifier(self.verifier(r), cfg)

            def exploited(history: Any) -> bool:
                return self.criteria.attack_succeeded(kind, history, reference)

            outcome = players.train_prover(cfg, self.prover_init, self.data.prover, kind, path.parent / "unused",
                                           seed=50_000 + 100 * self.seed + r, verifier=verifier,
                                           roles="helpful" if kind == "goodhart" else "sneaky",
                                           steps=cfg.attack_steps, stop=exploited, save=False)
            result = {"reward": kind, "round": r, "reference": reference,
                      "steps_to_exploit": outcome.fired_at if outcome.stopped else None,
                      "censored": not outcome.stopped, "budget": cfg.attack_steps, "history": outcome.history}
        # a work unit: NaN stays NaN, so a resumed game reads back what a fresh one computed
        atomic_write_text(path, json.dumps(result, indent=2, default=float) + "\n")
        self._timed("attacks", t)
        return result

    # -- the whole game -----------------------------------------------------------------------------

    def play(self) -> dict[str, Any]:
        """Every stage of this seed's game; returns its evaluation frames and attack records."""
        cfg = self.cfg
        self.players()
        self.samples_of(0)
        self.judge()
        evals = [self.evaluate("round-0", self.prover_init, self.verifier(1), self.roles).assign(round=0)]
        attacks = []
        for r in range(1, cfg.rounds + 1):
            self.verifier(r)
            prover = self.prover(r)
            df = self.evaluate(f"round-{r}", prover, self.verifier(r), self.roles).assign(round=r)
            evals.append(df)
            if r < cfg.rounds:
                self.samples_of(r)
            helpful_correct = df[(df["role"] == "helpful") & df["correct"]]["score"]
            reference = float(helpful_correct.mean()) if len(helpful_correct) else None
            for kind in cfg.attacks:
                attacks.append(self.attack(r, kind, reference))
        baseline = None
        if cfg.baseline:
            path = self.work / "baseline" / "prover"
            if not path.exists():
                t = time.perf_counter()
                budget = cfg.rounds * cfg.steps_per_round  # the paper: the game's whole budget
                _say(cfg, f"seed {self.seed}: correctness-only baseline prover ({budget} steps)")
                players.train_prover(cfg, self.prover_init, self.data.prover, "correctness", path,
                                     seed=90_000 + self.seed, roles="helpful", steps=budget)
                self._timed("baseline", t)
            baseline = self.evaluate("baseline", path, None, ("helpful",))
        histories, rl_rounds = [], []
        for r in range(1, cfg.rounds + 1):
            info = json.loads((self.work / f"round-{r}" / "prover" / "rl_history.json").read_text())
            for step, summary in enumerate(info["history"]):  # step: updates behind the batch (TRL scores first)
                histories.append({"round": r, "step": step, **summary})
            kls = [float(rec["kl"]) for rec in info["log_history"] if "kl" in rec]
            rl_rounds.append({"round": r, "steps": info["steps"], "stopped": info["stopped"],
                              "stopped_at": info.get("fired_at"),
                              "final_kl": kls[-1] if kls else None})
        return {"evals": pd.concat(evals, ignore_index=True), "attacks": attacks, "baseline": baseline,
                "history": pd.DataFrame(histories), "rl_rounds": rl_rounds, "timings": dict(self.timings)}


def _first_tokens(tokenizer: Any, texts: Any, k: int) -> list[str]:
    """Each text cut to its first ``k`` tokens: what the time-limited legibility judge may read."""
    return [tokenizer.decode(tokenizer(str(t), add_special_tokens=False)["input_ids"][:k]) for t in texts]


def check_work(work: Path) -> None:
    """Refuse a work directory that belongs to another game."""
    marker = work / "config.json"
    if marker.exists():
        return
    if work.exists() and any(work.iterdir()):
        raise OverseerError(f"{work} holds files of another game; remove it or choose another runs directory")
