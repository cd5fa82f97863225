from pathlib import Path

import numpy as np
import pytest
import torch

from overseer.errors import OverseerError
from overseer.models import ActivationCache, extract_features, load_model, pool

TEXTS = ["paris is in france", "tokyo", "the movie is good and the review is good and true", "a b"]


def _reference(path: Path, texts: list[str], layers: tuple[int, ...]) -> dict[tuple[int, str], np.ndarray]:
    """Each text alone (no padding) through plain transformers, pooled by hand: {(layer, pooling): rows}."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    rows: dict[tuple[int, str], list[np.ndarray]] = {}
    for text in texts:
        inputs = tok(text, return_tensors="pt")
        with torch.no_grad():
            states = model(**inputs, output_hidden_states=True).hidden_states
        for layer in layers:
            hidden = states[layer][0]  # (tokens, dim)
            for pooling, row in (("last", hidden[-1]), ("first", hidden[0]), ("mean", hidden.mean(0))):
                rows.setdefault((layer, pooling), []).append(row.numpy())
    return {key: np.stack(value) for key, value in rows.items()}


@pytest.mark.parametrize(("fixture", "padding_side"),
                         [("tiny_causal", "left"), ("tiny_causal_right", "right"), ("tiny_encoder", "right")])
@pytest.mark.parametrize("pooling", ["last", "mean", "first"])
def test_batched_features_equal_each_text_alone(fixture: str, padding_side: str, pooling: str,
                                                request: pytest.FixtureRequest) -> None:
    """``last`` is the hidden state at the text's last real token, ``first`` at its first, ``mean`` the mean
    over its real tokens: the same numbers as a separate forward pass on the unpadded text, although
    the batch of four texts of different lengths is padded (on the tokenizer's side)."""
    path = request.getfixturevalue(fixture)
    lm = load_model(str(path), device="cpu")
    assert lm.tokenizer.padding_side == padding_side
    assert len({len(ids) for ids in lm.tokenizer(TEXTS)["input_ids"]}) == len(TEXTS)  # so the batch is padded
    layers = (-1, 1, 0)  # the last block, the first block, the embeddings
    batched = extract_features(lm, TEXTS, layers=list(layers), pooling=pooling, batch_size=4)
    expected = _reference(path, TEXTS, layers)
    for layer in layers:
        assert batched[layer].shape == (len(TEXTS), lm.model.config.hidden_size)
        assert batched[layer].dtype == np.float32
        np.testing.assert_allclose(batched[layer], expected[layer, pooling], atol=1e-4, rtol=1e-4)
    # the three poolings give different numbers here, so one cannot pass for another
    others = [p for p in ("last", "mean", "first") if p != pooling]
    assert not any(np.allclose(batched[-1], expected[-1, p], atol=1e-3) for p in others)


def test_pool_picks_last_real_token_for_both_padding_sides() -> None:
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert pool(hidden, right, "last").flatten().tolist() == [1.0, 7.0]
    assert pool(hidden, left, "last").flatten().tolist() == [3.0, 7.0]
    assert pool(hidden, left, "first").flatten().tolist() == [2.0, 4.0]
    assert pool(hidden, right, "mean").flatten().tolist() == [0.5, 5.5]


def test_bad_layer_and_pooling_are_clear_errors(tiny_causal: Path) -> None:
    lm = load_model(str(tiny_causal), device="cpu")
    with pytest.raises(OverseerError, match="layer 7 is out of range; this model allows 0..3"):
        extract_features(lm, TEXTS, layers=[7])
    with pytest.raises(OverseerError, match="unknown pooling 'max'"):
        extract_features(lm, TEXTS, pooling="max")


def test_activation_cache_reuses_without_loading_model(tiny_causal: Path, tmp_path: Path) -> None:
    cache = ActivationCache(root=tmp_path, device="cpu")
    first = cache.features(str(tiny_causal), TEXTS, [-1], "last")
    assert cache.stats == {"hits": 0, "misses": 1}
    fresh = ActivationCache(root=tmp_path, device="cpu")
    again = fresh.features(str(tiny_causal), TEXTS, [-1], "last")
    np.testing.assert_array_equal(first[-1], again[-1])
    assert fresh.stats == {"hits": 1, "misses": 0}
    assert fresh.loaded_models == []  # the model was never loaded
    other = fresh.features(str(tiny_causal), TEXTS[:2], [-1], "last")  # other texts: a miss
    assert fresh.stats["misses"] == 1 and other[-1].shape[0] == 2


@pytest.mark.parametrize("kind", ["causal", "encoder"])
def test_middle_layer_skips_the_blocks_above_it_and_gives_the_same_numbers(kind: str, tmp_path: Path,
                                                                           tiny_builders: dict) -> None:
    """Features at layer 1 of a 4-block model run only blocks 1-2, and equal a full pass's; the model is whole after."""
    path = tiny_builders[kind](tmp_path / "m", layers=4)
    lm = load_model(str(path), device="cpu")
    ran: list[int] = []
    for i, block in enumerate(_blocks(lm.model)):  # blocks that see the batch (not a one-token warm-up)
        block.register_forward_hook(lambda _, args, __, i=i: ran.append(i) if args[0].shape[0] == len(TEXTS) else None)
    middle = extract_features(lm, TEXTS, layers=[1], pooling="mean", batch_size=4)
    assert sorted(set(ran)) == [0, 1]  # block 1's raw output is read; blocks 2 and 3 never run
    expected = _reference(path, TEXTS, (1, -1))
    np.testing.assert_allclose(middle[1], expected[1, "mean"], atol=1e-4, rtol=1e-4)
    ran.clear()
    last = extract_features(lm, TEXTS, layers=[-1], pooling="mean", batch_size=4)
    assert sorted(set(ran)) == [0, 1, 2, 3] and lm.model.config.num_hidden_layers == 4
    np.testing.assert_allclose(last[-1], expected[-1, "mean"], atol=1e-4, rtol=1e-4)


def _blocks(model: torch.nn.Module) -> torch.nn.ModuleList:
    return next(m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == 4)
