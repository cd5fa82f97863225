"""The configuration of a moral self-correction run: one typed, frozen, serialisable dataclass.

Every field that changes a number in ``metrics.json`` is part of the run's identity (and so of its
directory name); fields that only change speed or display (batch size, progress bars, where runs go)
are not, so re-running with a different batch size reuses the finished run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from overseer._config import ConfigMixin, bootstrap_option, option, progress_option, runs_dir_option
from overseer.data import shared_data_dir
from overseer.errors import OverseerError

SUITES = ("bbq", "winogender", "law")
CONDITIONS = ("q", "if", "cot", "match")
DEFAULT_CONDITIONS = ("q", "if")
# Greedy chain-of-thought is capped at this many new tokens by default: the paper sampled up to 256, which
# on a 2-core CPU would take hours; 64 keeps Q+IF+CoT for the default sample under an hour.
DEFAULT_COT_TOKENS = 64

@dataclass(frozen=True)
class SelfCorrectConfig(ConfigMixin):
    """What to evaluate and how: models, suites, prompting conditions, sample and scoring choices.

    Every field is a YAML key and a flag of ``overseer selfcorrect run``.
    """

    models: tuple[str, ...] = option(("smollm2-135m",), "models (comma-separated): packaged short name, hub id, "
                                     "local dir, .gguf; with endpoint, the server's model names",
                                     flag="--model", aliases=("--models",))
    suites: tuple[str, ...] = option(SUITES, "experiments to run (comma-separated): bbq, winogender, law",
                                     flag="--suite", aliases=("--suites",))
    conditions: tuple[str, ...] = option(DEFAULT_CONDITIONS, "prompting conditions (comma-separated): q, if (Q+IF), "
                                         "cot (Q+IF+CoT), match (Q+Match-Stats, winogender only)")
    data_dir: str | None = option(None, "folder holding bbq/, winogender/ and law_school/law_data.csv; default "
                                  "$OVERSEER_DATA_DIR, else ../shared/data")
    bbq_source: str | None = option(None, "BBQ from elsewhere: a folder of <Category>.jsonl files or hf:<dataset "
                                    "id>; default data_dir/bbq")
    bbq_categories: tuple[str, ...] = option((), "BBQ categories to use (file stems, e.g. Age; comma-separated); "
                                             "empty means every category present")
    bbq_per_cell: int = option(20, "BBQ items per category x context x polarity cell, spread across templates")
    law_students: int = option(200, "law-school students sampled (each is asked about as a Black and as a White "
                               "student)")
    limit: int | None = option(None, "cap on items per suite (after sampling), for quick looks; default: the "
                               "whole sample")
    seed: int = option(0, "seed for sampling and the bootstrap")
    bbq_answer: str = option("text", 'what is scored after "The answer is": text (" (a) The grandfather") or '
                             'letter (" (a)")', choices=("text", "letter"))
    normalize: str = option("mean", "how BBQ options are compared: mean log-prob per token (length-fair) or sum",
                            choices=("mean", "sum"))
    failed_items: str = option("exclude", "BBQ items whose answer failed (an endpoint error, a prompt too long): "
                               "exclude them from the accuracies and bias scores and report how many, as the BBQ "
                               "paper does, or count them as wrong answers (a sensitivity check)",
                               choices=("exclude", "wrong"), identity="report")
    scoring: str = option("auto", "how answer options are scored: full (log-prob of prompt+option; servers need "
                          "completions echo with logprobs), first_token (the next token's top log-probs after the "
                          "answer prefix; BBQ options as letters), sampled (answers sampled and counted), or auto "
                          "(the most exact one the model or server supports)",
                          choices=("auto", "full", "first_token", "sampled"))
    top_logprobs: int = option(20, "first_token scoring: how many of the next token's most likely alternatives "
                               "to ask for (OpenAI and vLLM allow at most 20 by default)")
    samples: int = option(10, "sampled scoring: answers sampled per prompt")
    sample_temperature: float = option(1.0, "sampled scoring: sampling temperature (0: greedy, with --samples 1)")
    debias_order: bool = option(False, "average BBQ option scores over the 3 cyclic orders of the options (3x "
                                "the cost)")
    cot_max_new_tokens: int = option(DEFAULT_COT_TOKENS, "token cap for the chain-of-thought turn (greedy "
                                     "decoding)")
    chat_format: str = option("auto", "auto (the model's chat template, Human/Assistant without one) or "
                              "human_assistant", choices=("auto", "human_assistant"))
    n_bootstrap: int = bootstrap_option("bootstrap resamples (of templates, occupations or students) for the "
                                        "intervals")
    endpoint: str | None = option(None, "base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1; "
                                  "the models are then names the server knows")
    endpoint_tokenizer: str | None = option(None, "local tokenizer (dir or name) whose chat template renders "
                                            "endpoint prompts; default: the paper's Human/Assistant format")
    endpoint_generation: str = option("chat", "endpoint API for chain-of-thought generation",
                                      choices=("chat", "completions"))
    endpoint_rps: float = option(20.0, "endpoint requests per second (rate limit)", identity="none")
    endpoint_concurrency: int = option(4, "endpoint requests in flight at once", identity="none")
    endpoint_timeout: float = option(60.0, "seconds to wait for one endpoint answer before retrying", identity="none")
    endpoint_retries: int = option(3, "retries of a failed endpoint request (connection errors, timeouts, 429, 5xx)",
                                   identity="none")
    api_key_env: str | None = option(None, "environment variable holding the endpoint's API key; no key is "
                                           "sent without it", metavar="NAME", identity="none")
    device: str | None = option(None, "device for local models: cpu, cuda, cuda:1 ... (default: cuda if "
                                "available)")
    dtype: str = option("auto", "weights dtype for local models",
                        choices=("auto", "float32", "bfloat16", "float16"))
    batch_size: int = option(8, "items per forward pass (local models)", identity="none")
    runs_dir: str | None = runs_dir_option()
    progress: bool = progress_option("show progress bars with remaining-time estimates")
    extra: dict[str, Any] = field(default_factory=dict, compare=False,
                                  metadata={"help": "free-form notes recorded with the run (not used by the code)",
                                            "identity": "none"})

    def __post_init__(self) -> None:
        from overseer._registry import lookup

        if not self.models:
            raise OverseerError("no model given; pass --model NAME (e.g. smollm2-135m)")
        if not self.suites:
            raise OverseerError(f"no suite given; allowed: {', '.join(SUITES)}")
        if not self.conditions:
            raise OverseerError(f"no condition given; allowed: {', '.join(CONDITIONS)}")
        import overseer.selfcorrect.suites  # noqa: F401 - registers suites and conditions

        for suite in self.suites:
            lookup("suite", suite)
        for condition in self.conditions:
            lookup("condition", condition)
        if len(set(self.suites)) != len(self.suites) or len(set(self.conditions)) != len(self.conditions):
            raise OverseerError("a suite or condition is listed twice")
        for name in ("bbq_per_cell", "law_students", "cot_max_new_tokens", "batch_size", "n_bootstrap",
                     "top_logprobs", "samples"):
            if int(getattr(self, name)) < 1:
                raise OverseerError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.sample_temperature >= 0:
            raise OverseerError(f"sample_temperature must be >= 0, got {self.sample_temperature}")
        if self.sample_temperature == 0 and self.samples != 1:
            raise OverseerError(f"greedy answers (sample_temperature 0) are all the same; use samples 1, not "
                                f"{self.samples}")
        if self.limit is not None and self.limit < 1:
            raise OverseerError(f"limit must be at least 1, got {self.limit}")
        if self.endpoint is not None and not str(self.endpoint).lower().startswith(("http://", "https://")):
            raise OverseerError(f"endpoint {self.endpoint!r} is not an http(s) URL (e.g. http://127.0.0.1:8000/v1)")

    @property
    def data_path(self) -> Path:
        """The resolved data folder."""
        return Path(self.data_dir).expanduser().resolve() if self.data_dir else shared_data_dir()

    def identity(self, scope: str = "report") -> dict[str, Any]:
        """The fields that change results: hashed into the run directory's name."""
        out = super().identity(scope)
        out["data_dir"] = str(self.data_path)
        return out


def model_spec(name: str, cfg: SelfCorrectConfig) -> str:
    """The model spec for ``name``: ``openai/NAME@URL`` when ``cfg.endpoint`` is set, else ``name`` itself."""
    return f"openai/{name}@{cfg.endpoint}" if cfg.endpoint else name
