"""Fixtures for the self-correction tests: the shared data folder and a tiny chat model on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert (DATA / "bbq").is_dir(), f"shared data missing at {DATA.resolve()}"
    return DATA.resolve()


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from overseer.models._tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_chat_lm"))


@pytest.fixture(scope="session")
def tiny_lm(tiny_lm_dir: Path):
    from overseer.models import load_model

    return load_model(str(tiny_lm_dir), device="cpu")
