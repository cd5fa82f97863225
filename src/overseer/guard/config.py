"""The typed, documented configuration of one guard run (constitutional classifiers, Sharma et al. 2025; CC++ 2026).

The defaults are the offline CPU tier: the packaged proxy constitution (a fictional museum's vault code
and varnish recipe), SmolLM2-135M-Instruct as the guarded model, its first 8 layers as the external
classifier model, a linear probe on layer 12 of the guarded model, 40-token replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from overseer._config import ConfigMixin, option, progress_option, runs_dir_option
from overseer.errors import OverseerError
from overseer.guard.classifiers import CLASSIFIER_KINDS
from overseer.guard.transforms import TRANSFORMS, transform_names

DEFAULT_TRANSFORMS = ("plain", "base64", "rot13", "leetspeak", "spacing", "roleplay", "ignore_rules", "fragment")
DEFAULT_ADAPTIVE = ("roleplay+leetspeak", "ignore_rules+leetspeak", "roleplay+spacing", "ignore_rules+fragment")


@dataclass(frozen=True)
class GuardConfig(ConfigMixin):
    """One guard run: constitution and data, classifiers, calibration, attacks and evaluation.

    Every field is a YAML key and a flag of ``overseer guard run``.
    """

    constitution: str = option("proxy", "packaged constitution name (proxy) or a YAML file of restricted and "
                               "permitted categories with examples and the secrets that grade leaks")
    guarded_model: str = option("smollm2-135m", "the model under guard (any local model spec; the probes read its "
                                "activations, so it must be local)")
    classifier_model: str = option("smollm2-135m-l8", "external classifier model of the input, output and "
                                   "exchange classifiers (a local causal model or encoder)")
    classifier_layer: int = option(-1, "layer of the classifier model the sequence and output heads read")
    probe_layers: tuple[int, ...] = option((12,), "layers of the guarded model the probe reads (several: "
                                           "concatenated, the multi-layer probe)")
    probe_smoothing: float = option(0.5, "weight of the newest token in the exponential moving average of per-token "
                                    "logits (1: no smoothing); the output classifier uses it too")
    head_c: float = option(0.1, "inverse L2 strength of every logistic head")
    generator: str | None = option(None, "model spec that writes extra training requests from the constitution and "
                                   "runs the paraphrase/translate transformations (e.g. openai/MODEL@URL); none: "
                                   "templates only")
    generator_requests: int = option(8, "requests the generator writes per category")
    train_per_category: int = option(30, "synthetic training exchanges per category (restricted categories add half "
                                     "as many refusals)")
    transform_share: float = option(0.5, "share of training requests passed through a random transformation")
    attack_requests: int = option(16, "held-out restricted requests attacked with every transformation")
    transforms: tuple[str, ...] = option(DEFAULT_TRANSFORMS, "transformations of every attack (comma-separated; "
                                         "compose with +; paraphrase and translate need --generator)")
    adaptive: tuple[str, ...] = option(DEFAULT_ADAPTIVE, "compositions the adaptive attacker also tries after the "
                                       "single transformations (empty: no adaptive attack)")
    attacker_rounds: int = option(0, "rounds of an attacker model (the generator) that rewrites each request a "
                                  "defence stopped, shown the defence's reply (needs --generator; 0: none)")
    benign_calibration: int = option(48, "held-out benign requests whose replies set every threshold")
    benign_eval: int = option(48, "other held-out benign requests whose replies measure false refusals")
    target_frr: float = option(0.05, "false-refusal rate each threshold is calibrated for on benign traffic")
    cascade_stages: tuple[str, ...] = option(("probe", "exchange"), "cascade stages: cheap first, then second")
    escalation_rate: float = option(0.2, "share of benign traffic the cascade's first stage escalates (0: the "
                                    "first stage alone; 1: the second alone)")
    sweep_rates: tuple[float, ...] = option((0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
                                            "escalation rates of the cost-versus-robustness curve", identity="report")
    ensemble: tuple[str, ...] = option(("probe", "exchange"), "classifiers whose probabilities the ensemble averages")
    policy_defence: str = option("cascade", "the defence the saved policy (and guard:RUN specs) applies")
    max_new_tokens: int = option(40, "most tokens of each reply of the guarded model")
    batch_size: int = option(16, "prompts per generation batch")
    seed: int = option(0, "seed of the data, transformations and heads")
    hh_rlhf: int = option(0, "also score this many first human turns of hh-rlhf's harmless-base test set (read from "
                          "the shared data folder, never copied into the repository) with the input classifier: "
                          "how far the proxy classifiers transfer to real harmful requests (0: skip)")
    device: str | None = option(None, "cpu, cuda, cuda:1 ...; default: cuda if available", identity="none")
    runs_dir: str | None = runs_dir_option()
    progress: bool = progress_option("print one line per stage")
    extra: dict[str, Any] = option({}, "free-form notes recorded with the run (not used by the code)", identity="none")

    def __post_init__(self) -> None:
        for name in ("train_per_category", "attack_requests", "benign_calibration", "benign_eval", "max_new_tokens",
                     "batch_size", "generator_requests"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OverseerError(f"{name} must be a whole number >= 1; got {value!r}")
        if isinstance(self.attacker_rounds, bool) or self.attacker_rounds < 0:
            raise OverseerError(f"attacker_rounds must be a whole number >= 0; got {self.attacker_rounds!r}")
        if self.attacker_rounds and self.generator is None:
            raise OverseerError("attacker_rounds needs an attacker model; pass --generator SPEC or --attacker-rounds 0")
        if isinstance(self.hh_rlhf, bool) or self.hh_rlhf < 0:
            raise OverseerError(f"hh_rlhf must be a whole number >= 0; got {self.hh_rlhf!r}")
        for name in ("target_frr", "escalation_rate", "transform_share"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise OverseerError(f"{name} must be a share in [0, 1]; got {value!r}")
        for rate in self.sweep_rates:
            if not 0 <= rate <= 1:
                raise OverseerError(f"sweep_rates must be shares in [0, 1]; got {rate!r}")
        if not 0 < self.probe_smoothing <= 1:
            raise OverseerError(f"probe_smoothing must be in (0, 1] (1: no smoothing); got {self.probe_smoothing!r}")
        if not self.head_c > 0:
            raise OverseerError(f"head_c must be a number > 0; got {self.head_c!r}")
        if not self.transforms:
            raise OverseerError(f"give at least one transformation; allowed: {', '.join(TRANSFORMS)}")
        transform_names(self.transforms)
        transform_names(self.adaptive)
        if self.generator is None:
            for name in self.transforms + self.adaptive:
                for part in name.split("+"):
                    if part in ("paraphrase", "translate"):
                        raise OverseerError(f"transformation {part!r} needs a generator model; pass --generator SPEC "
                                            "or drop it from --transforms/--adaptive")
        if not self.probe_layers:
            raise OverseerError("probe_layers must name at least one layer of the guarded model")
        if len(self.cascade_stages) != 2:
            raise OverseerError(f"cascade_stages must name two classifiers (cheap first); got {self.cascade_stages}")
        for name in (*self.cascade_stages, *self.ensemble):
            if name not in CLASSIFIER_KINDS:
                raise OverseerError(f"unknown classifier {name!r}; allowed: {', '.join(CLASSIFIER_KINDS)}")
        if self.cascade_stages[0] == self.cascade_stages[1]:
            raise OverseerError(f"cascade stages must differ; got {self.cascade_stages}")
        if len(self.ensemble) < 2 or len(set(self.ensemble)) != len(self.ensemble):
            raise OverseerError(f"ensemble must name two or more different classifiers; got {self.ensemble}")
        from overseer.guard.classifiers import DEFENCES

        if self.policy_defence not in DEFENCES:
            raise OverseerError(f"unknown policy_defence {self.policy_defence!r}; allowed: {', '.join(DEFENCES)}")
