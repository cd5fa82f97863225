"""The game's settings: the field of candidates, the techniques and their settings, scoring."""

from __future__ import annotations

from dataclasses import dataclass

from overseer._config import ConfigMixin, bootstrap_option, option, progress_option, runs_dir_option
from overseer.errors import OverseerError
from overseer.organisms.game.materials import PROMPTS
from overseer.organisms.game.techniques import TECHNIQUES, technique_names
from overseer.organisms.implants import BEHAVIORS


@dataclass(frozen=True)
class GameConfig(ConfigMixin):
    """One audit game: the field of candidates, the techniques and their settings, scoring."""

    organisms: tuple[str, ...] = option((), "candidate models (comma-separated): saved organism names, organism:NAME "
                                        "specs or model folders; each folder's card says whether it is an organism "
                                        "or a control, and which behaviour")
    base: str | None = option(None, "the base model every candidate was fine-tuned from (default: the one the cards "
                              "name; all must name the same)")
    techniques: tuple[str, ...] = option(TECHNIQUES, f"audit techniques (comma-separated): {', '.join(TECHNIQUES)}")
    judges: tuple[str, ...] = option((), "judges of the behavioural audit (llm:MODEL, logprob:SPEC, ...); the first "
                                     "is primary (default: logprob:BASE)", flag="--judge")
    prompts_per_behavior: int = option(4, f"probe prompts per behaviour (1-{min(map(len, PROMPTS.values()))})")
    max_tokens: int = option(48, "tokens of each candidate answer (greedy)")
    layer: int | None = option(None, "hidden layer read by probe and activation_diff (default: the ladder's probe "
                               "layer of the base, else the last)")
    pooling: str = option("mean", "how a text's hidden states are pooled: mean, last or first",
                          choices=("mean", "last", "first"))
    top_k: int = option(16, "data_search: corpus rows the search returns for each behaviour's description")
    search_rows: int = option(4000, "data_search: clean rows each candidate's training rows are mixed into (the 749 "
                              "country questions with plain answers, then GSM8K training problems)")
    search_data: str | None = option(None, "data_search: a local copy of GSM8K (jsonl file or folder holding "
                                     "train.jsonl) for the clean rows past the country questions (default: gsm8k/ in "
                                     "$OVERSEER_DATA_DIR or ../shared/data where present, else the hub)")
    encoder: str = option("minilm-l6", "data_search: the sentence encoder (mean-pooled last layer)")
    train_behaviors: tuple[str, ...] = option((), "train (or reuse) an organism and its control for each of these "
                                              "behaviours on --model first, and add them to the field")
    failed_judge: str = option("flag", "behavioral: what a primary judge that fails the planted-transcript check "
                               "(`overseer audit check-judge`) gets: flag (played, its row marked) or refuse",
                               choices=("flag", "refuse"))
    model: str | None = option(None, "the base model --train-behaviors trains on")
    seed: int = option(0, "seed of the shuffle that hides the candidates' names")
    bootstrap: int = bootstrap_option("bootstrap resamples of each AUROC interval")
    device: str | None = option(None, "cpu, cuda, cuda:N or mps for the white-box techniques (default: CUDA when "
                                "present)", identity="none")
    runs_dir: str | None = runs_dir_option()
    progress: bool = progress_option()

    def __post_init__(self) -> None:
        for name, allowed in (("techniques", technique_names()), ("train_behaviors", BEHAVIORS)):
            bad = [v for v in getattr(self, name) if v not in allowed]
            if bad:
                what = "technique" if name == "techniques" else "behavior"
                raise OverseerError(f"unknown {what} {bad[0]!r}; allowed: {', '.join(allowed)}")
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise OverseerError(f"{name} lists a value twice: {', '.join(getattr(self, name))}")
        if not self.techniques:
            raise OverseerError(f"give at least one technique; allowed: {', '.join(technique_names())}")
        if self.train_behaviors and not self.model:
            raise OverseerError("train_behaviors needs the model to train them on (--model SPEC)")
        if not self.organisms and not self.train_behaviors:
            raise OverseerError("give the candidates (--organisms NAME,NAME-control,...) or train them "
                                "(--train-behaviors flattery,product --model SPEC)")
        most = min(map(len, PROMPTS.values()))
        limits = (("prompts_per_behavior", 1, most), ("max_tokens", 1, None), ("top_k", 1, None),
                  ("search_rows", 1, None), ("bootstrap", 1, None))
        for name, low, high in limits:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
                allowed = f"a whole number in {low}-{high}" if high else f"a whole number >= {low}"
                raise OverseerError(f"{name}={value!r} is not allowed; allowed: {allowed}")
        if self.judges:
            from overseer.audit.judges import parse_judge_spec

            for spec in self.judges:
                parse_judge_spec(spec)
