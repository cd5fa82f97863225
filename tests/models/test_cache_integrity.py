"""The activation cache verifies every entry on read and never lets a bad or unwritable cache end a run."""

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from overseer.models import ActivationCache

TEXTS = ["paris is in france", "tokyo", "the movie is good and the review is good and true", "a b"]


def _entries(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


@pytest.fixture()
def filled(tiny_causal: Path, tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A cache root holding the one entry of TEXTS at the last layer, and that entry's features."""
    root = tmp_path / "cache"
    features = ActivationCache(root=root, device="cpu").features(str(tiny_causal), TEXTS, [-1], "last")[-1]
    assert len(_entries(root)) == 1
    return root, features


def test_entries_carry_a_checksum_in_their_name(filled: tuple[Path, np.ndarray]) -> None:
    root, _ = filled
    (entry,) = _entries(root)
    digest, checksum, suffix = entry.name.split(".")
    assert suffix == "npy" and len(digest) == 24 and len(checksum) == 16


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_a_damaged_entry_is_recomputed_with_one_warning(
    filled: tuple[Path, np.ndarray], tiny_causal: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root, features = filled
    (entry,) = _entries(root)
    data = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "flip":  # same size, one byte of the array changed: only a checksum sees it
        entry.write_bytes(data[:-3] + bytes([data[-3] ^ 0xFF]) + data[-2:])
    else:
        entry.write_bytes(b"")
    capsys.readouterr()

    cache = ActivationCache(root=root, device="cpu")
    again = cache.features(str(tiny_causal), TEXTS, [-1], "last")[-1]
    np.testing.assert_allclose(again, features, rtol=1e-5, atol=1e-6)
    assert cache.stats == {"hits": 0, "misses": 1}
    (warning,) = _warnings(capsys.readouterr().err)
    assert str(entry) in warning and "recomput" in warning
    (rewritten,) = _entries(root)  # the bad file is gone, a good one took its place
    fresh = ActivationCache(root=root, device="cpu")
    np.testing.assert_array_equal(fresh.features(str(tiny_causal), TEXTS, [-1], "last")[-1], again)
    assert fresh.stats == {"hits": 1, "misses": 0} and fresh.loaded_models == []
    assert _warnings(capsys.readouterr().err) == []
    assert rewritten.is_file()


def test_an_entry_from_an_older_version_without_checksum_loads_when_it_is_whole(
    filled: tuple[Path, np.ndarray], tiny_causal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, features = filled
    (entry,) = _entries(root)
    legacy = entry.with_name(entry.name.split(".")[0] + ".npy")  # the old layout: <digest>.npy
    entry.rename(legacy)
    cache = ActivationCache(root=root, device="cpu")
    np.testing.assert_array_equal(cache.features(str(tiny_causal), TEXTS, [-1], "last")[-1], features)
    assert cache.stats == {"hits": 1, "misses": 0} and cache.loaded_models == []

    legacy.write_bytes(legacy.read_bytes()[:100])  # truncated: np.load would raise ValueError
    capsys.readouterr()
    cache = ActivationCache(root=root, device="cpu")
    again = cache.features(str(tiny_causal), TEXTS, [-1], "last")[-1]
    np.testing.assert_allclose(again, features, rtol=1e-5, atol=1e-6)
    assert cache.stats["misses"] == 1 and len(_warnings(capsys.readouterr().err)) == 1
    assert not legacy.exists()


def test_an_entry_of_the_wrong_length_is_recomputed(
    filled: tuple[Path, np.ndarray], tiny_causal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = filled
    (entry,) = _entries(root)
    digest = entry.name.split(".")[0]
    entry.unlink()
    np.save(entry.with_name(f"{digest}.npy"), np.zeros((2, 32), dtype=np.float32))  # 2 rows for 4 texts
    cache = ActivationCache(root=root, device="cpu")
    assert cache.features(str(tiny_causal), TEXTS, [-1], "last")[-1].shape[0] == 4
    assert cache.stats["misses"] == 1 and "rows" in _warnings(capsys.readouterr().err)[0]


def test_a_full_disk_warns_once_leaves_nothing_and_the_features_still_come_back(
    tiny_causal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def half_then_full(path: Path, array: np.ndarray) -> str:  # the disk fills up half way through the file
        path.write_bytes(b"\x93NUMPY" + array.tobytes()[: array.nbytes // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    root = tmp_path / "cache"
    cache = ActivationCache(root=root, device="cpu")
    with monkeypatch.context() as patch:
        patch.setattr("overseer.models._cache._write_file", half_then_full)
        got = cache.features(str(tiny_causal), TEXTS, [0, -1], "last")
    assert set(got) == {0, -1} and got[-1].shape[0] == 4
    (warning,) = _warnings(capsys.readouterr().err)  # two entries failed; one line says so
    assert "No space left on device" in warning and str(root) in warning
    assert _entries(root) == []  # no partial or temporary file left
    cache.features(str(tiny_causal), TEXTS, [-1], "last")
    assert len(_entries(root)) == 1


def test_an_unwritable_cache_directory_is_one_warning(
    tiny_causal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")  # root cannot be created under a file, even by root
    cache = ActivationCache(root=blocker / "activations", device="cpu")
    assert cache.features(str(tiny_causal), TEXTS, [-1], "last")[-1].shape[0] == 4
    (warning,) = _warnings(capsys.readouterr().err)
    assert str(blocker / "activations") in warning and "Not a directory" in warning
