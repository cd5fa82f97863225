"""The typed, documented configuration of one weak-to-strong experiment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from overseer._config import ConfigMixin, bootstrap_option, check_kwargs, option
from overseer.errors import OverseerError
from overseer.w2s.synthetic import WeakSupervisor, parse_weak

L2_GRID = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
"""Default L2 penalties a probe head chooses from: the coefficient on half the summed squared weights
(scikit-learn's ``1 / C``: 10000 is ``C = 1e-4``), see :func:`overseer.w2s.heads.l2_penalty`."""


@dataclass(frozen=True)
class HeadConfig(ConfigMixin):
    """How a probe head is trained on cached activations (flags ``--head-<field>``).

    A linear head minimises its mean loss plus an L2 penalty by full-batch L-BFGS to convergence;
    an MLP head (``hidden_dim`` > 0) minimises the same objective by minibatch Adam.
    """

    RENAMED: ClassVar[dict[str, str]] = {
        "weight_decay": "was replaced by l2, an explicit L2 penalty (scikit-learn's 1/C) that the linear head is "
                        "solved to convergence with; AdamW decay values do not carry over, so set l2 afresh",
        "weight_decay_grid": "was replaced by l2_grid, L2 penalties (scikit-learn's 1/C) to choose from by "
                             "cross-validation; AdamW decay values do not carry over, so set l2_grid afresh or leave "
                             "the default",
    }

    """Old option names, refused with what replaced them (read by :func:`overseer._config.mapping.from_mapping`)."""

    hidden_dim: int = option(0, "0 for a linear probe, >0 for a one-hidden-layer MLP of that width",
                             aliases=("--hidden-dim",))
    l2: float = option(1.0, "L2 penalty on standardised features when l2_grid is empty: the mean loss plus "
                       "l2 / (2 n) x the sum of squared weights, i.e. scikit-learn's LogisticRegression with "
                       "C = 1 / l2", aliases=("--l2",))
    l2_grid: tuple[float, ...] = option(
        L2_GRID, "L2 penalties (as l2) to choose from by cross-validation on each fit's own training targets "
        "(a student's: its weak labels); empty (the flag with no values): use l2", aliases=("--l2-grid",))
    cv_folds: int = option(3, "cross-validation folds for choosing the L2 penalty")
    max_iter: int = option(1000, "linear head: L-BFGS iterations at most per solve (a solve that stops short of tol "
                           "is warned about and recorded)")
    tol: float = option(1e-6, "linear head: converged when the largest gradient component of the mean objective "
                        "is at most this")
    stages: int = option(5, "linear head under a loss that reads its own predictions (logconf, product): "
                         "full-batch solves (at least 2), the loss's training fraction going from 0 to 1 over them")
    epochs: int = option(30, "MLP head: training epochs", aliases=("--epochs",))
    lr: float = option(1e-3, "MLP head: Adam learning rate", aliases=("--lr",))
    batch_size: int = option(64, "MLP head: examples per training step")

    def __post_init__(self) -> None:
        import math

        if not (math.isfinite(self.lr) and self.lr > 0):
            raise OverseerError(f"head lr must be a positive number; got {self.lr}")
        if self.epochs <= 0 or self.batch_size <= 0 or self.hidden_dim < 0:
            raise OverseerError(
                f"head epochs and batch_size must be positive and hidden_dim >= 0; got epochs={self.epochs}, "
                f"batch_size={self.batch_size}, hidden_dim={self.hidden_dim}"
            )
        if self.max_iter <= 0 or self.stages < 2:
            raise OverseerError(f"head max_iter must be positive and stages at least 2; got max_iter={self.max_iter}, "
                                f"stages={self.stages}")
        if not (math.isfinite(self.tol) and self.tol > 0):
            raise OverseerError(f"head tol must be a positive number; got {self.tol}")
        for penalty in (self.l2, *self.l2_grid):
            if not (math.isfinite(penalty) and penalty >= 0):
                raise OverseerError(f"head L2 penalties must be numbers >= 0; got {penalty}")
        if self.cv_folds < 2:
            raise OverseerError(f"head cv_folds must be at least 2; got {self.cv_folds}")

    def head_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of one :class:`~overseer.w2s.heads.TorchHead` (the fixed ``l2``, no grid)."""
        return {k: v for k, v in self.to_dict().items() if k not in ("l2_grid", "cv_folds")}


@dataclass(frozen=True)
class W2SConfig(ConfigMixin):
    """One weak-to-strong experiment (Burns et al. 2023), probe mode.

    The defaults are the offline experiment: the built-in ``word_valence`` task (is a word's human
    valence rating positive?), SmolLM2-135M cut to 8 layers as the weak supervisor and the full
    SmolLM2-135M as the strong student, linear probes fitted to convergence with an L2
    penalty chosen by cross-validation, soft-label cross-entropy, three seeds. Every field is a YAML key and a flag
    of ``overseer w2s run``.
    """

    dataset: str = option("word_valence", "registered dataset name (`overseer datasets`)")
    dataset_args: dict[str, Any] = option({}, "keyword arguments for the dataset loader, e.g. path=valid.csv")
    weak: str = option("smollm2-135m-l8", "weak supervisor: ladder rung, packaged short name, hub id, local dir "
                       "or .gguf file; or synthetic label noise on the truth: noise:P (random flips), noise-cc:P0,P1 "
                       "(flip rates for true class 0 and 1), MODEL+noise:P (a model's labels, then flipped)")
    strong: str = option("smollm2-135m", "strong student and ceiling model (same forms as weak)")
    weak_layer: int | None = option(None, "hidden layer probed on the weak model (0 = embeddings, -1 = the last "
                                    "block); default: the ladder rung's probe layer, else -1")
    strong_layer: int | None = option(None, "hidden layer probed on the strong model; default: the rung's probe "
                                      "layer (20 for the full SmolLM2-135M, whose later middle layers probe facts "
                                      "best), else -1")
    weak_pooling: str | None = option(None, "last, mean or first token; default: the rung's pooling, else mean "
                                      "for encoders and last for causal models", metavar="{last,mean,first}")
    strong_pooling: str | None = option(None, "pooling on the strong model (as weak_pooling)",
                                        metavar="{last,mean,first}")
    n_train: int = option(1500, "examples in the weak-train split (weak model and ceiling train here with "
                          "ground truth)")
    n_label: int | None = option(None, "examples the weak model labels for the student (default: n_train)")
    n_test: int = option(1000, "examples in the test split")
    method: str = option("xent", "how the student learns from weak labels: xent (cross-entropy), logconf "
                         "(auxiliary confidence loss), product, bootstrap, filter, s2s (docs/methods.md)")
    method_args: dict[str, Any] = option({}, "method hyperparameters, checked against the method's signature, "
                                         "e.g. hard=true for xent, aux_coef=0.5 for logconf")
    learner: str = option("probe", "how models are trained: probe (heads on cached activations) or finetune")
    learner_args: dict[str, Any] = option({}, "extra keyword arguments for the learner (e.g. fine-tuning "
                                          "hyperparameters)")
    head: HeadConfig = option(HeadConfig(), "how probe heads are trained")
    baseline_draws: int = option(5, "independent flip draws of the noise-matched baseline per seed (each an "
                                 "exact-count flip of the student split's truth); runs report their mean and spread")
    seeds: tuple[int, ...] = option((0, 1, 2), "each seed draws its own splits and head initialisation; intervals "
                                    "pool over seeds")
    max_length: int = option(256, "tokens per text for feature extraction")
    batch_size: int = option(32, "batch size for feature extraction", identity="none")
    n_bootstrap: int = bootstrap_option("bootstrap resamples for the intervals")
    device: str | None = option(None, "cpu, cuda, cuda:1 ... (default: cuda if available)", identity="none")
    trust_remote_code: bool = option(False, "allow hub models to run their own Python code (off unless asked "
                                     "for)", identity="none")

    def __post_init__(self) -> None:
        from overseer._registry import lookup
        from overseer.models import POOLINGS
        from overseer.w2s.learners import learner_class
        from overseer.w2s.methods import method_names

        if self.method not in method_names():
            raise OverseerError(f"unknown method {self.method!r}; allowed: {', '.join(method_names())}")
        checked = check_kwargs(lookup("w2s_method", self.method), self.method_args, "method_args",
                               f"method {self.method!r}")
        if checked != self.method_args:  # strings from flags parsed as the method's numbers
            object.__setattr__(self, "method_args", checked)
        learner_class(self.learner)
        for name in ("weak_pooling", "strong_pooling"):
            value = getattr(self, name)
            if value is not None and value not in POOLINGS:
                raise OverseerError(f"unknown {name.replace('_', ' ')} {value!r}; allowed: {', '.join(POOLINGS)}")
        for name in ("n_train", "n_test", "n_bootstrap", "max_length", "batch_size", "baseline_draws"):
            if getattr(self, name) <= 0:
                raise OverseerError(f"{name} must be positive; got {getattr(self, name)}")
        if not self.seeds:
            raise OverseerError("seeds must list at least one seed")
        self.weak_supervisor()  # a malformed noise spec fails here, in one line

    def weak_supervisor(self) -> WeakSupervisor:
        """The weak spec read: its model (None for pure label noise) and its flip rates."""
        return parse_weak(self.weak)

    @property
    def weak_model(self) -> str | None:
        """The model behind the weak supervisor (None when its labels are pure noise on the truth)."""
        return self.weak_supervisor().model

    def identity(self, scope: str = "report") -> dict[str, Any]:
        """The fields that change results, with model defaults (layer, pooling) filled in.

        Where it runs (device, batch size) is left out; defaults are resolved so that a change of
        a rung's default layer or pooling can never make an old run look current.
        """
        from overseer.models import LADDER
        from overseer.w2s.learners import default_layer, default_pooling

        d = super().identity(scope)  # where it runs (device, batch size) is declared identity="none"
        for role in ("weak", "strong"):
            model = self.weak_model if role == "weak" else self.strong
            if model is None:  # pure label noise: no model, nothing probed
                d[f"{role}_layer"] = d[f"{role}_pooling"] = None
                continue
            if d[f"{role}_layer"] is None:
                d[f"{role}_layer"] = default_layer(model)
            if d[f"{role}_pooling"] is None and model in LADDER:  # hub ids keep None: no network here
                d[f"{role}_pooling"] = default_pooling(model)
        return d
