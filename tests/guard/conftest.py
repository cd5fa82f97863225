"""Guard fixtures: a tiny chat model whose tokenizer knows the proxy constitution's words, and small configs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def guard_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random Llama (ChatML template) trained-tokenizer on the proxy constitution's text."""
    from overseer.guard.constitution import load_constitution
    from overseer.models._tiny import build_tiny_causal_lm

    c = load_constitution("proxy")
    corpus = [c.system_prompt, *c.refusals] + [t for cat in c.categories for t in cat.requests + cat.responses]
    return str(build_tiny_causal_lm(tmp_path_factory.mktemp("guard-tiny"), corpus=corpus, vocab_size=700))


@pytest.fixture
def small_config(guard_model: str, tmp_path: Path):
    """A guard config of seconds: the tiny model everywhere, few items, short replies."""
    from overseer.guard import GuardConfig

    def make(**changes: object) -> GuardConfig:
        base = GuardConfig(guarded_model=guard_model, classifier_model=guard_model, probe_layers=(1,),
                           train_per_category=8, attack_requests=4, benign_calibration=10, benign_eval=10,
                           max_new_tokens=8, transforms=("plain", "base64", "fragment"),
                           adaptive=("roleplay+leetspeak",), sweep_rates=(0.0, 0.5, 1.0),
                           runs_dir=str(tmp_path / "runs"), progress=False)
        return dataclasses.replace(base, **changes)

    return make
