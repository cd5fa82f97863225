"""The self-correction datasets (BBQ, Winogender, law school) read through the data layer.

Their detailed behaviour is tested in tests/selfcorrect/test_data.py through the pillar's modules,
which re-export these readers; here: the data layer owns them, and the BBQ hub path pins a revision.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from overseer.data import bbq, law_school, winogender
from overseer.errors import OverseerError


def test_the_pillar_uses_the_data_layer_readers():
    from overseer.selfcorrect import bbq as sc_bbq
    from overseer.selfcorrect import law as sc_law
    from overseer.selfcorrect import winogender as sc_wino

    assert sc_bbq.load_bbq is bbq.load_bbq and sc_bbq.sample_bbq is bbq.sample_bbq and sc_bbq.BBQItem is bbq.BBQItem
    assert sc_wino.load_winogender is winogender.load_winogender and sc_wino.WinogenderItem is winogender.WinogenderItem
    assert sc_law.load_students is law_school.load_students and sc_law.Student is law_school.Student


def test_readers_from_the_data_layer(shared_data_dir: Path):
    data = shared_data_dir
    items = bbq.load_bbq(data / "bbq", ("Age",))
    assert items[0].uid == "Age/0" and items[0].unknown_index == 2
    assert len(bbq.sample_bbq(items, per_cell=5, seed=0)) == 20  # 1 category x 2 contexts x 2 polarities x 5
    assert len(winogender.load_winogender(data / "winogender")) == 60
    students = law_school.load_students(data / "law_school" / "law_data.csv", 4, seed=0)
    assert len(students) == 4 and {s.sex for s in students} <= {"female", "male"}


def test_bbq_hub_source_can_pin_a_revision(monkeypatch):
    import datasets

    seen = []

    def configs(dataset_id, revision=None):
        seen.append(("configs", dataset_id, revision))
        return ["Age"]

    def load(dataset_id, name, split, revision=None):
        seen.append(("load", dataset_id, name, split, revision))
        return []

    monkeypatch.setattr(datasets, "get_dataset_config_names", configs)
    monkeypatch.setattr(datasets, "load_dataset", load)
    assert bbq.load_bbq("hf:someone/bbq@abc123") == []
    assert bbq.load_bbq("hf:someone/bbq") == []
    assert seen == [
        ("configs", "someone/bbq", "abc123"),
        ("load", "someone/bbq", "Age", "test", "abc123"),
        ("configs", "someone/bbq", None),
        ("load", "someone/bbq", "Age", "test", None),
    ]
    with pytest.raises(OverseerError, match="unknown BBQ category 'Race'"):
        bbq.load_bbq("hf:someone/bbq", ("Race",))
    with pytest.raises(OverseerError, match="sample dataset 'bbq' needs path="):
        bbq.bbq()
