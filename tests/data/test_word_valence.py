"""The built-in word_valence task: real human ratings, balanced classes, inflections kept together."""

from __future__ import annotations

import pytest

from overseer.data import load_dataset
from overseer.errors import OverseerError


def test_labels_follow_the_human_ratings_and_classes_are_balanced():
    ds = load_dataset("word_valence")
    labels = {ex.id.removeprefix("vader:"): ex.label for ex in ds.examples}
    assert labels["superb"] == 1 and labels["loving"] == 1  # rated 3.1 and 2.9 by the VADER raters
    assert labels["harsher"] == 0 and labels["isolation"] == 0  # -2.2 and -1.7
    assert "peculiar" not in labels  # 0.6: too close to neutral at the default min_valence=1.0
    assert ":-)" not in labels and all(w.replace("-", "").isalpha() for w in labels)
    assert sum(ds.labels()) * 2 == len(ds) > 4000
    assert ds.examples[0].text.startswith('Question: Is the word "') and ds.examples[0].text.endswith("Answer:")


def test_inflections_share_a_group_and_ids_are_unique():
    ds = load_dataset("word_valence")
    groups = {ex.id.removeprefix("vader:"): ex.group for ex in ds.examples}
    present = [w for w in ("love", "loved", "lovely", "loving") if w in groups]
    assert len(present) >= 3 and len({groups[w] for w in present}) == 1
    assert len({ex.id for ex in ds.examples}) == len(ds)


def test_seed_limit_and_bad_threshold():
    a, b = load_dataset("word_valence", seed=0), load_dataset("word_valence", seed=1)
    assert a.fingerprint() == load_dataset("word_valence", seed=0).fingerprint() != b.fingerprint()
    assert len(load_dataset("word_valence", limit=100)) == 100
    assert len(load_dataset("word_valence", min_valence=2.0)) < len(a)
    with pytest.raises(OverseerError, match="no words at min_valence=5"):
        load_dataset("word_valence", min_valence=5)
