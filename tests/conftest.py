"""Shared fixtures: tiny random-weight models saved to disk, loaded through the real loading code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

# As the CLI does: library progress bars ("Loading weights") stay out of the output tests read.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA_ENV = "OVERSEER_SHARED_DATA"


def _shared_data() -> Path:
    """The real datasets: ``$OVERSEER_SHARED_DATA``, else ``../shared/data`` beside the repository."""
    override = os.environ.get(SHARED_DATA_ENV)
    return Path(override).expanduser() if override else REPO.parent / "shared" / "data"


SHARED_DATA = _shared_data()
_NO_SHARED_DATA = (
    f"reads the real datasets in {SHARED_DATA}, which is not there "
    f"(set ${SHARED_DATA_ENV} to their folder; CI has them)"
)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The folder of real datasets (README.md there lists them); tests that use it are skipped without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(_NO_SHARED_DATA)
    return SHARED_DATA.resolve()


@pytest.hookimpl(tryfirst=True)  # before ``-m`` selection, so ``-m "not shared_data"`` sees the added markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Only tests that read the real datasets need them: those using the ``shared_data_dir`` fixture
    (directly or through another fixture) are marked ``shared_data``, and marked tests are skipped,
    with the reason, where the folder is absent. Every other test runs everywhere.
    """
    skip = None if SHARED_DATA.is_dir() else pytest.mark.skip(reason=_NO_SHARED_DATA)
    for item in items:
        if "shared_data_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.shared_data)
        if skip is not None and item.get_closest_marker("shared_data"):
            item.add_marker(skip)


_WORDS = (
    "the a an is in of to and city country paris france london england tokyo japan berlin germany "
    "question answer yes no true false good bad movie review human assistant what which who where "
    "model weak strong student label test train data one two three four five six seven eight nine"
).split()


def _tokenizer(padding_side: str):
    """A small word-level tokenizer built offline, with pad/eos/bos/unk tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(["<pad>", "<unk>", "<s>", "</s>", *_WORDS, ".", ",", "?", ":"])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    core.normalizer = None
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        padding_side=padding_side,
    )


def build_tiny_causal(path: Path, padding_side: str = "left", layers: int = 3) -> Path:
    """Save a random 3-layer Llama (width 32) and its tokenizer to ``path``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = _tokenizer(padding_side)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def build_tiny_encoder(path: Path, padding_side: str = "right", layers: int = 2) -> Path:
    """Save a random 2-layer BERT (width 32) and its tokenizer to ``path``."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    tok = _tokenizer(padding_side)
    config = BertConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
        num_attention_heads=4, max_position_embeddings=128, pad_token_id=tok.pad_token_id,
    )
    BertModel(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_causal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_causal(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_causal_right(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_causal(tmp_path_factory.mktemp("tiny-llama-right"), padding_side="right")


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Activation caches of tests never touch the user's cache (converted GGUF models are shared)."""
    monkeypatch.setenv("OVERSEER_ACTIVATION_CACHE_DIR", str(tmp_path_factory.mktemp("activations")))


@pytest.fixture(scope="session")
def tiny_builders() -> dict[str, Any]:
    """The tiny-model builders, for tests that need another depth or padding side."""
    return {"causal": build_tiny_causal, "encoder": build_tiny_encoder}
