"""The typed, documented configuration of one prover-verifier game (Kirchner et al. 2024).

Every field that changes a number is part of the run's identity (and so of its directory name);
fields that only change where files go or what is shown are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from overseer._config import ConfigMixin, option, progress_option, runs_dir_option
from overseer.errors import OverseerError
from overseer.models import CLASSIFIER_POOLINGS

TASKS = ("toy", "arith", "gsm8k")
"""``toy``: digit chains mod 10 (:mod:`overseer.pvg.toy`); ``arith``: generated one- and two-step word
problems; ``gsm8k``: grade-school math (hub ``openai/gsm8k`` or a local copy via ``data_path``)."""
TINY = "tiny"
"""Model name meaning: build a tiny random-initialised model for the task and warm-start it on correct traces."""
RL_ALGORITHMS = ("grpo", "rloo")

@dataclass(frozen=True)
class PVGConfig(ConfigMixin):
    """One prover-verifier game: task, players, rounds, rewards and evaluation.

    The defaults are the CPU toy tier: digit chains mod 10, a tiny prover (3 blocks of width 64)
    and a tinier verifier (2 blocks of width 32), both built from random weights and warm-started
    on correct solutions (the verifier also on the task's facts; it scores a text by its own language
    model's token log-probabilities), three seeds of three rounds of SRC against the verifier, the correctness-only
    baseline and one sneaky-only SRC attacker per round. Every field is a YAML key and a flag of ``overseer pvg run``.
    """

    task: str = option("toy", "verifiable task: toy (digit chains mod 10), arith (one- and two-step word "
                       "problems), gsm8k", choices=TASKS)
    data_path: str | None = option(None, "gsm8k only: a local copy (jsonl file or folder); default: the hub")
    n_problems: int = option(2000, "problems drawn (split into prover, verifier and test halves)")
    split: tuple[float, ...] = option((0.45, 0.45, 0.1), "shares of the prover, verifier and test splits (no "
                                      "prompt is in two)")
    prover: str = option(TINY, "prover model: tiny (built here, random init) or any model name load_model "
                         "accepts (smollm2-135m, a hub id, a local dir)")
    verifier: str = option(TINY, "verifier base model: tiny (built here) or any model name (minilm-l6, a ladder "
                           "rung such as smollm2-135m-l8, a hub id)")
    verifier_num_layers: int | None = option(None, "keep only the first N blocks of the verifier's base model")
    prover_width: int = option(64, "tiny prover: width")
    prover_layers: int = option(3, "tiny prover: blocks")
    verifier_width: int = option(32, "tiny verifier: width")
    verifier_layers: int = option(2, "tiny verifier: blocks")
    warmup_problems: int = option(2000, "problems (disjoint from every split) whose correct solutions warm-start "
                                  "the prover (supervised) and, for tiny verifiers, the verifier's body (language "
                                  "modelling)")
    warmup_epochs: float = option(6.0, "passes over the warm-up solutions (the prover and the tiny judge; the tiny "
                                  "verifier's body: verifier_warmup_steps)")
    verifier_warmup_steps: int = option(1500, "tiny verifier: language-modelling steps (32 rows each) of its body's "
                                        "warm-up on the warm-up solutions and the task's table of facts")
    verifier_warmup_lr: float = option(1e-3, "tiny verifier: warm-up learning rate (constant)")
    verifier_fact_share: float = option(0.5, "tiny verifier: share of its warm-up rows that are lines of the task's "
                                        "facts (toy: every single-step line, e.g. '7 + 5 = 2'), the rest worked "
                                        "solutions; 0: solutions only")
    warmup_lr: float = option(3e-3, "warm-up learning rate (tiny models; 1e-4 is typical for pretrained ones)")
    rounds: int = option(3, "rounds of the game (verifier, then prover)")
    reward: str = option("src", "prover reward: src (signed relative convincingness), cgc (correctness-gated "
                         "convincingness), goodhart (verifier score only), correctness")
    baseline: bool = option(True, "also train the correctness-only prover for the game's whole RL budget (rounds x "
                            "steps_per_round steps; the legibility tax is its accuracy minus the game's helpful "
                            "accuracy)")
    attacks: tuple[str, ...] = option(("src",), "rewards of the sneaky-only attackers run against each round's "
                                      "frozen verifier (comma-separated: src, cgc, goodhart; empty: none)")
    attack_steps: int = option(20, "most RL steps of an attacker (not exploiting within them is reported as "
                               "censored)")
    attack_incorrect_rate: float = option(0.95, "an SRC/CGC attacker succeeds only once at least this share of its "
                                          "solutions (over the last stop_window steps) is incorrect (the paper: 0.95)")
    rl: str = option("grpo", "TRL trainer of the provers", choices=RL_ALGORITHMS)
    steps_per_round: int = option(20, "most RL steps of the prover per round")
    stop_rule: bool = option(True, "end a round early when, over the last stop_window steps, sneaky-incorrect "
                             "solutions reach the mean verifier score of helpful-correct ones (the paper's rule; CGC "
                             "also needs sneaky accuracy below cgc_sneaky_accuracy; Goodhart: accuracy below "
                             "goodhart_accuracy over goodhart_window steps)")
    stop_window: int = option(8, "RL steps pooled by the stopping rule and the attack tests (one batch is noise)")
    stop_min_steps: int = option(8, "RL steps before the stopping rule or an attack test may fire")
    cgc_penalty: float = option(-2.0, "CGC's reward of a solution whose correctness does not match its role (V0), "
                                "also the floor of a matching one's")
    cgc_sneaky_accuracy: float = option(0.05, "a CGC round ends only with the sneaky role's accuracy below this "
                                        "(the paper: 5%)")
    goodhart_accuracy: float = option(0.2, "a Goodhart round or attacker ends when accuracy falls below this (the "
                                      "paper: 0.2)")
    goodhart_window: int = option(10, "steps over which the Goodhart accuracy is pooled (the paper: 80, scaled to "
                                  "the toy tier's budgets)")
    prompts_per_step: int = option(8, "prompts per RL step")
    num_generations: int = option(8, "completions per prompt (the group of GRPO/RLOO and of SRC's centring)")
    max_completion_tokens: int = option(48, "most tokens of a solution")
    temperature: float = option(1.0, "sampling temperature of the prover (training and evaluation)")
    lr: float = option(1e-4, "prover RL learning rate (toy tier: 5e-4 and 2e-4 lowered even the correctness-only "
                       "prover's accuracy; 1e-4 kept it); 0 freezes every prover, the control of the stopping "
                       "rule and the attack tests")
    kl_beta: float = option(0.02, "KL penalty to the initial prover (TRL's beta; 0 turns it off)")
    use_vllm: bool = option(False, "generate the prover's RL samples with vLLM (TRL's colocate mode; GPU, vllm "
                            "installed)")
    lora: bool = option(False, "train LoRA adapters of the prover instead of all weights")
    lora_r: int = option(16, "LoRA rank")
    verifier_samples: int = option(2, "solutions per problem and role that each prover writes on the verifier "
                                   "split (the verifier's training data)")
    verifier_round_weight: str = option("equal", "how the verifier mixes provers: equal (the same number of "
                                        "correct-incorrect pairs from every earlier prover, as the paper) or "
                                        "pooled (all pairs as drawn)", choices=("equal", "pooled"))
    verifier_pairs: int = option(1500, "correct-incorrect pairs of every round's verifier, in total over the "
                                 "earlier provers (equal weight: an equal share from each), so every round's verifier "
                                 "gets the same optimisation")
    verifier_pooling: str | None = option(None, "how the verifier reads its body: likelihood (the mean and lowest "
                                          "log-probability of the text's tokens under the body's own language "
                                          "model; causal bodies), last, mean, first; None: likelihood for the tiny "
                                          "verifier, else the classifier's default", choices=CLASSIFIER_POOLINGS)
    verifier_epochs: float = option(2.0, "passes over the verifier's pairs")
    verifier_lr: float = option(3e-4, "learning rate of every round's verifier and of the legibility judge")
    verifier_lora: bool = option(False, "train LoRA adapters of the verifier (pretrained bases)")
    score_penalty: float = option(1e-3, "weight of the mean squared score in the verifier's loss (centres scores)")
    eval_samples: int = option(4, "solutions per test problem and role at evaluation")
    best_of_n: int = option(4, "n of balanced best-of-n (even, at most eval_samples): the current helpful prover's "
                            "solutions of problems with n/2 correct and n/2 incorrect")
    accept_rate: float = option(0.8, "acceptance threshold per round: the verifier score that accepts this share of "
                                "helpful-correct solutions on the other half of the test problems (cross-fitted)")
    judge_tokens: int = option(12, "the legibility judge reads only the first K tokens of a solution")
    judge_samples: int = option(2, "solutions per prover-split problem and role of the base prover that train the "
                                "legibility judge (its own data, not the verifiers')")
    seeds: tuple[int, ...] = option((0, 1, 2), "seeds (each a whole game; intervals cover problems and seeds)")
    device: str | None = option(None, "cpu, cuda, cuda:1 ...; default: cuda if available", identity="none")
    workers: int | None = option(None, "seeds played at once, each in its own process with an equal share of the "
                                 "CPU threads; default: as many as seeds and CPU cores allow when the players run on "
                                 "the CPU, else 1 (the thread count can change the last bits of the numbers)",
                                 identity="none")
    generation_batch_size: int = option(64, "prompts per generation batch outside RL (seeded samples depend on it)")
    runs_dir: str | None = runs_dir_option()
    progress: bool = progress_option("print one line per stage")
    extra: dict[str, Any] = option({}, "free-form notes recorded with the run (not used by the code)", identity="none")

    def __post_init__(self) -> None:
        from overseer.pvg.rewards import reward_names

        allowed = reward_names()
        if self.reward not in allowed:
            raise OverseerError(f"unknown reward {self.reward!r}; allowed: {', '.join(allowed)}")
        for attack in self.attacks:
            if attack not in ("src", "cgc", "goodhart"):
                raise OverseerError(f"unknown attack reward {attack!r}; allowed: src, cgc, goodhart")
        for name in ("n_problems", "warmup_problems", "rounds", "steps_per_round", "prompts_per_step",
                     "max_completion_tokens", "verifier_samples", "verifier_warmup_steps", "verifier_pairs",
                     "eval_samples", "judge_tokens",
                     "prover_width", "prover_layers", "verifier_width", "verifier_layers", "lora_r",
                     "generation_batch_size", "attack_steps", "stop_min_steps", "stop_window", "goodhart_window",
                     "best_of_n", "judge_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OverseerError(f"{name} must be a whole number >= 1; got {value!r}")
        if self.num_generations < 2:
            raise OverseerError(
                f"num_generations must be at least 2 (groups need a spread); got {self.num_generations}"
            )
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 1):
            raise OverseerError(f"workers must be a whole number >= 1 (or left out); got {self.workers!r}")
        for name in ("warmup_epochs", "warmup_lr", "verifier_warmup_lr", "verifier_epochs", "verifier_lr",
                     "temperature"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and not isinstance(value, bool) and value > 0):
                raise OverseerError(f"{name} must be a number > 0; got {value!r}")
        if not (isinstance(self.verifier_fact_share, int | float) and not isinstance(self.verifier_fact_share, bool)
                and 0 <= self.verifier_fact_share <= 1):
            raise OverseerError(f"verifier_fact_share must be a share in [0, 1]; got {self.verifier_fact_share!r}")
        for name in ("kl_beta", "score_penalty", "lr"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and not isinstance(value, bool) and value >= 0):
                raise OverseerError(f"{name} must be a number >= 0; got {value!r}")
        for name in ("attack_incorrect_rate", "cgc_sneaky_accuracy", "goodhart_accuracy", "accept_rate"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 1):
                raise OverseerError(f"{name} must be a share in (0, 1]; got {value!r}")
        if not (isinstance(self.cgc_penalty, int | float) and -1e6 < self.cgc_penalty < 1e6):
            raise OverseerError(f"cgc_penalty must be a finite number; got {self.cgc_penalty!r}")
        if self.best_of_n % 2 or self.best_of_n > self.eval_samples:
            raise OverseerError(f"best_of_n must be even and at most eval_samples ({self.eval_samples}); "
                                f"got {self.best_of_n}")
        if len(self.split) != 3 or any(s < 0 for s in self.split) or abs(sum(self.split) - 1) > 1e-9:
            raise OverseerError(f"split must be 3 shares >= 0 summing to 1 (prover, verifier, test); got {self.split}")
        if not self.seeds:
            raise OverseerError("no seed given; pass --seeds 0 (or several)")
        if len(set(self.seeds)) != len(self.seeds):
            raise OverseerError(f"a seed is listed twice: {self.seeds}")
        if self.verifier_num_layers is not None and self.verifier_num_layers < 1:
            raise OverseerError(f"verifier_num_layers must be >= 1; got {self.verifier_num_layers}")
        if self.data_path is not None and self.task != "gsm8k":
            raise OverseerError(f"data_path is read only by task gsm8k; got task {self.task!r}")
