"""The typed, documented configuration of one weak-to-strong experiment."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from overseer._yaml import read_yaml
from overseer.errors import OverseerError


@dataclass(frozen=True)
class HeadConfig:
    """How a probe head is trained on cached activations."""

    hidden_dim: int = 0
    """0 for a linear probe, >0 for a one-hidden-layer MLP of that width."""
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 0.1
    """AdamW weight decay on standardised features: the probe's regularisation."""
    batch_size: int = 64

    def __post_init__(self) -> None:
        import math

        if not (math.isfinite(self.lr) and self.lr > 0):
            raise OverseerError(f"head lr must be a positive number; got {self.lr}")
        if self.epochs <= 0 or self.batch_size <= 0 or self.hidden_dim < 0:
            raise OverseerError(
                f"head epochs and batch_size must be positive and hidden_dim >= 0; got epochs={self.epochs}, "
                f"batch_size={self.batch_size}, hidden_dim={self.hidden_dim}"
            )
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise OverseerError(f"head weight_decay must be >= 0; got {self.weight_decay}")


@dataclass(frozen=True)
class W2SConfig:
    """One weak-to-strong experiment (Burns et al. 2023), probe mode.

    The defaults are the offline experiment: the built-in ``geo_facts`` task, SmolLM2-135M cut to
    8 layers as the weak supervisor and the full SmolLM2-135M as the strong student, linear
    probes, soft-label cross-entropy.
    """

    dataset: str = "geo_facts"
    """Registered dataset name (``overseer datasets``)."""
    dataset_args: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for the dataset loader, e.g. ``{"path": "valid.csv"}``."""
    weak: str = "smollm2-135m-l8"
    """Weak supervisor: a ladder rung, packaged short name, hub id, local dir or .gguf file."""
    strong: str = "smollm2-135m"
    """Strong student and ceiling model."""
    weak_layer: int | None = None
    strong_layer: int | None = None
    """Hidden layer to probe (0 = embeddings, -1 = the last block); default: the ladder rung's
    probe layer (20 for the full SmolLM2-135M, whose later middle layers probe facts best), else -1."""
    weak_pooling: str | None = None
    strong_pooling: str | None = None
    """``last``, ``mean`` or ``first``; default: the rung's pooling, else ``mean`` for encoders and
    ``last`` for causal models."""
    n_train: int = 2000
    """Examples in the weak-train split (weak model and ceiling train here with ground truth)."""
    n_label: int | None = None
    """Examples the weak model labels for the student (default: ``n_train``)."""
    n_test: int = 1000
    method: str = "xent"
    """How the student learns from weak labels: ``xent`` (cross-entropy), ``logconf`` (auxiliary
    confidence loss), ... (``overseer.w2s.methods.method_names()``)."""
    method_args: dict[str, Any] = field(default_factory=dict)
    """E.g. ``{"hard": true}`` for xent, ``{"aux_coef": 0.5, "warmup_frac": 0.2}`` for logconf."""
    learner: str = "probe"
    """How models are trained: ``probe`` (heads on cached activations)."""
    learner_args: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for the learner (e.g. fine-tuning hyperparameters)."""
    head: HeadConfig = field(default_factory=HeadConfig)
    seeds: tuple[int, ...] = (0,)
    """Each seed draws its own splits and head initialisation; intervals pool over seeds."""
    max_length: int = 256
    batch_size: int = 32
    """Batch size for feature extraction."""
    n_bootstrap: int = 1000
    device: str | None = None
    trust_remote_code: bool = False
    """Allow hub models to run their own Python code (off unless asked for)."""

    def __post_init__(self) -> None:
        from overseer.models import POOLINGS
        from overseer.w2s.learners import learner_class
        from overseer.w2s.methods import method_names

        if self.method not in method_names():
            raise OverseerError(f"unknown method {self.method!r}; allowed: {', '.join(method_names())}")
        learner_class(self.learner)
        for name in ("weak_pooling", "strong_pooling"):
            value = getattr(self, name)
            if value is not None and value not in POOLINGS:
                raise OverseerError(f"unknown {name.replace('_', ' ')} {value!r}; allowed: {', '.join(POOLINGS)}")
        for name in ("n_train", "n_test", "n_bootstrap", "max_length", "batch_size"):
            if getattr(self, name) <= 0:
                raise OverseerError(f"{name} must be positive; got {getattr(self, name)}")
        if not self.seeds:
            raise OverseerError("seeds must list at least one seed")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (what the run directory records)."""
        d = dataclasses.asdict(self)
        d["seeds"] = list(self.seeds)
        return d

    def identity(self) -> dict[str, Any]:
        """The fields that change results, with model defaults (layer, pooling) filled in.

        Where it runs (device, batch size) is left out; defaults are resolved so that a change of
        a rung's default layer or pooling can never make an old run look current.
        """
        from overseer.models import LADDER
        from overseer.w2s.learners import default_layer, default_pooling

        d = self.to_dict()
        for where_it_runs in ("device", "batch_size", "trust_remote_code"):
            d.pop(where_it_runs)
        for role in ("weak", "strong"):
            model = d[role]
            if d[f"{role}_layer"] is None:
                d[f"{role}_layer"] = default_layer(model)
            if d[f"{role}_pooling"] is None and model in LADDER:  # hub ids keep None: no network here
                d[f"{role}_pooling"] = default_pooling(model)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> W2SConfig:
        """Build from a dict (a YAML file's content), refusing unknown keys with a clear error."""
        if not isinstance(data, dict):
            raise OverseerError(f"config must be a mapping of options; got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(data) - known)
        if extra:
            raise OverseerError(f"unknown config option {extra[0]!r}; allowed: {', '.join(sorted(known))}")
        data = dict(data)
        if "head" in data:
            head = data["head"] or {}
            head_known = {f.name for f in dataclasses.fields(HeadConfig)}
            bad = sorted(set(head) - head_known) if isinstance(head, dict) else ["(not a mapping)"]
            if bad:
                raise OverseerError(f"unknown head option {bad[0]!r}; allowed: {', '.join(sorted(head_known))}")
            data["head"] = HeadConfig(**head)
        if "seeds" in data:
            seeds = data["seeds"]
            data["seeds"] = tuple(seeds) if isinstance(seeds, list | tuple) else (seeds,)
        try:
            return cls(**data)
        except TypeError as exc:
            raise OverseerError(f"invalid config: {exc}") from exc

    @classmethod
    def from_yaml(cls, path: str | Path) -> W2SConfig:
        """Load a YAML config file."""
        return cls.from_dict(read_yaml(path, "config file"))
