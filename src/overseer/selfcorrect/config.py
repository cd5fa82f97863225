"""The configuration of a moral self-correction run: one typed, frozen, serialisable dataclass.

Every field that changes a number in ``metrics.json`` is part of the run's identity (and so of its
directory name); fields that only change speed or display (batch size, progress bars, where runs go)
are not, so re-running with a different batch size reuses the finished run.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from overseer.errors import OverseerError

SUITES = ("bbq", "winogender", "law")
CONDITIONS = ("q", "if", "cot", "match")
DEFAULT_CONDITIONS = ("q", "if")
# Greedy chain-of-thought is capped at this many new tokens by default: the paper sampled up to 256, which
# on a 2-core CPU would take hours; 64 keeps Q+IF+CoT for the default sample under an hour.
DEFAULT_COT_TOKENS = 64

_NOT_IDENTITY = {"batch_size", "runs_dir", "progress", "endpoint_concurrency", "endpoint_rps"}


def _split(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    return tuple(v.strip() for v in value if v and v.strip())


def default_data_dir() -> Path:
    """Where the datasets live: ``$OVERSEER_DATA_DIR``, else ``../shared/data`` beside the checkout."""
    env = os.environ.get("OVERSEER_DATA_DIR")
    if env:
        return Path(env).expanduser()
    here = Path.cwd() / ".." / "shared" / "data"
    if here.is_dir():
        return here.resolve()
    repo = Path(__file__).resolve().parents[3]  # src/overseer/selfcorrect/config.py -> checkout root
    return (repo / ".." / "shared" / "data").resolve()


@dataclass(frozen=True)
class SelfCorrectConfig:
    """What to evaluate and how: models, suites, prompting conditions, sample and scoring choices."""

    models: tuple[str, ...] = ("smollm2-135m",)
    """Model names (packaged short name, hub id, local dir, .gguf), or endpoint model names with ``endpoint``."""
    suites: tuple[str, ...] = SUITES
    """Experiments to run: ``bbq``, ``winogender``, ``law``."""
    conditions: tuple[str, ...] = DEFAULT_CONDITIONS
    """Prompting conditions: ``q``, ``if`` (Q+IF), ``cot`` (Q+IF+CoT), ``match`` (Q+Match-Stats, Winogender only)."""
    data_dir: str | None = None
    """Folder holding ``bbq/``, ``winogender/`` and ``law_school/law_data.csv``; default: see default_data_dir."""
    bbq_source: str | None = None
    """BBQ from elsewhere: a folder of ``<Category>.jsonl`` files or ``hf:<dataset id>``; default data_dir/bbq."""
    bbq_categories: tuple[str, ...] = ()
    """BBQ categories to use (file stems, e.g. ``Age``); empty means every category present."""
    bbq_per_cell: int = 20
    """BBQ items per category x context x polarity cell, spread across templates."""
    law_students: int = 200
    """Law-school students sampled (each is asked about twice: as a Black and as a White student)."""
    limit: int | None = None
    """Cap on items per suite (after sampling), for quick looks; None uses the whole sample."""
    seed: int = 0
    """Seed for sampling and the bootstrap."""
    bbq_answer: str = "text"
    """What is scored after "The answer is": ``text`` (" (a) The grandfather") or ``letter`` (" (a)")."""
    normalize: str = "mean"
    """How BBQ options are compared: ``mean`` log-prob per token (length-fair) or ``sum``."""
    debias_order: bool = False
    """Average BBQ option scores over the 3 cyclic orders of the options (3x the cost)."""
    cot_max_new_tokens: int = DEFAULT_COT_TOKENS
    """Token cap for the chain-of-thought turn (greedy decoding)."""
    chat_format: str = "auto"
    """``auto`` (the model's chat template, Human/Assistant without one) or ``human_assistant``."""
    n_bootstrap: int = 1000
    """Bootstrap resamples (of templates, occupations or students) for the intervals."""
    endpoint: str | None = None
    """Base URL of an OpenAI-compatible server; the models are then names the server knows."""
    endpoint_tokenizer: str | None = None
    """Local tokenizer (dir or name) whose chat template renders endpoint prompts; default Human/Assistant."""
    endpoint_generation: str = "chat"
    """Endpoint API for chain-of-thought generation: ``chat`` or ``completions``."""
    endpoint_rps: float = 20.0
    """Endpoint requests per second (rate limit)."""
    endpoint_concurrency: int = 4
    """Endpoint requests in flight at once."""
    device: str | None = None
    """Device for local models (default: CUDA when available)."""
    dtype: str = "auto"
    """Weights dtype for local models."""
    batch_size: int = 8
    """Items per forward pass (local models)."""
    runs_dir: str | None = None
    """Where run directories go (default ``runs/``)."""
    progress: bool = True
    """Show progress bars with remaining-time estimates."""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    """Free-form notes recorded with the run (not used by the code)."""

    def __post_init__(self) -> None:
        from overseer._registry import lookup

        for name in ("models", "suites", "conditions", "bbq_categories"):
            object.__setattr__(self, name, _split(getattr(self, name)))
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
        if self.bbq_answer not in ("text", "letter"):
            raise OverseerError(f"unknown bbq_answer {self.bbq_answer!r}; allowed: letter, text")
        if self.normalize not in ("mean", "sum"):
            raise OverseerError(f"unknown normalize {self.normalize!r}; allowed: mean, sum")
        if self.chat_format not in ("auto", "human_assistant"):
            raise OverseerError(f"unknown chat_format {self.chat_format!r}; allowed: auto, human_assistant")
        for name in ("bbq_per_cell", "law_students", "cot_max_new_tokens", "batch_size", "n_bootstrap"):
            if int(getattr(self, name)) < 1:
                raise OverseerError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise OverseerError(f"limit must be at least 1, got {self.limit}")

    @property
    def data_path(self) -> Path:
        """The resolved data folder."""
        return Path(self.data_dir).expanduser().resolve() if self.data_dir else default_data_dir()

    def to_dict(self) -> dict[str, Any]:
        """All fields, JSON-ready."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    def identity(self) -> dict[str, Any]:
        """The fields that change results: hashed into the run directory's name."""
        out = {k: v for k, v in self.to_dict().items() if k not in _NOT_IDENTITY and k != "extra"}
        out["data_dir"] = str(self.data_path)
        return out

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of all fields (for building configs from flags or YAML)."""
        return [f.name for f in fields(cls)]
