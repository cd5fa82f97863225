from pathlib import Path

import numpy as np
import pytest
import torch

from overseer.errors import OverseerError
from overseer.models import ActivationCache, extract_features, load_model, pool

TEXTS = ["paris is in france", "tokyo", "the movie is good and the review is good and true", "a b"]


def _one_by_one(lm, texts, layer, pooling):
    rows = []
    for text in texts:
        rows.append(extract_features(lm, [text], layers=[layer], pooling=pooling, batch_size=1)[layer][0])
    return np.stack(rows)


@pytest.mark.parametrize("fixture", ["tiny_causal", "tiny_causal_right", "tiny_encoder"])
@pytest.mark.parametrize("pooling", ["last", "mean", "first"])
def test_batched_features_equal_unpadded_features(fixture: str, pooling: str, request: pytest.FixtureRequest) -> None:
    lm = load_model(str(request.getfixturevalue(fixture)), device="cpu")
    batched = extract_features(lm, TEXTS, layers=[-1, 1], pooling=pooling, batch_size=4)
    for layer in (-1, 1):
        assert batched[layer].shape == (len(TEXTS), lm.model.config.hidden_size)
        np.testing.assert_allclose(batched[layer], _one_by_one(lm, TEXTS, layer, pooling), atol=1e-4, rtol=1e-4)


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
