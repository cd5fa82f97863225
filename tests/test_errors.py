"""The shared one-line errors: 'unknown X' and its check over several names."""

from __future__ import annotations

import pytest

from overseer.errors import OverseerError, check_known, unknown


def test_check_known_accepts_known_names():
    check_known("option", ["b", "a"], ["a", "b", "c"])
    check_known("option", {}, [])


def test_check_known_refuses_the_first_unknown_name_in_sorted_order_listing_the_known_ones():
    with pytest.raises(OverseerError) as caught:
        check_known("finetune option", {"zeta": 1, "lr": 2, "beta": 3}, (n for n in ["lr", "epochs"]))
    assert str(caught.value) == str(unknown("finetune option", "beta", ["epochs", "lr"]))
    assert str(caught.value) == "unknown finetune option 'beta'; allowed: epochs, lr"
