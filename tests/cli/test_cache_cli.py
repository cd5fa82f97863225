"""``overseer cache info|verify|clear`` over the activation, endpoint and converted-model caches."""

import json
import sqlite3
from pathlib import Path

import pytest

from overseer.cli.main import main
from overseer.models import ActivationCache, cache_info, clear_caches, verify_caches
from overseer.models._guarded import ResponseCache

TEXTS = ["paris is in france", "tokyo", "a b"]


@pytest.fixture()
def caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_causal: Path) -> Path:
    """A cache root with 2 activation entries, 3 endpoint responses and 1 converted model."""
    root = tmp_path / "cache"
    monkeypatch.setenv("OVERSEER_CACHE_DIR", str(root))
    monkeypatch.delenv("OVERSEER_ACTIVATION_CACHE_DIR")
    ActivationCache(device="cpu").features(str(tiny_causal), TEXTS, [0, -1], "last")
    responses = ResponseCache(root / "endpoint" / "responses.sqlite")
    for i in range(3):
        responses.put(f"key{i}", {"choices": [{"text": str(i)}]})
    _model(root / "models" / "tiny-0123456789abcdef")
    return root


def _model(path: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    save_file({"w": torch.zeros(64, 64)}, str(path / "model.safetensors"))
    return path


def _activation_entries(root: Path) -> list[Path]:
    return sorted((root / "activations").rglob("*.npy"))


def test_info_counts_entries_and_sizes_of_each_cache(caches: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = {c.name: c for c in cache_info()}
    assert list(info) == ["activations", "endpoint", "models"]
    assert (info["activations"].entries, info["endpoint"].entries, info["models"].entries) == (2, 3, 1)
    assert info["activations"].path == caches / "activations" and info["activations"].bytes > 0
    assert info["endpoint"].path == caches / "endpoint" / "responses.sqlite"
    assert info["models"].bytes > 64 * 64 * 4

    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "2 entries" in lines["activations"] and str(caches / "activations") in lines["activations"]
    assert "3 responses" in lines["endpoint"] and "1 model" in lines["models"]


def test_info_on_empty_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                              ) -> None:
    monkeypatch.setenv("OVERSEER_CACHE_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("OVERSEER_ACTIVATION_CACHE_DIR", str(tmp_path / "acts"))
    assert [c.entries for c in cache_info()] == [0, 0, 0]
    assert cache_info()[0].path == tmp_path / "acts"  # the activation directory's own variable wins
    assert main(["cache", "info"]) == 0
    assert "0 entries" in capsys.readouterr().out
    assert not (tmp_path / "nothing").exists()  # looking creates nothing


def test_verify_reports_every_bad_entry_and_fix_removes_them(caches: Path, capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    entry = _activation_entries(caches)[0]
    entry.write_bytes(entry.read_bytes()[:40])
    with sqlite3.connect(caches / "endpoint" / "responses.sqlite") as conn:
        conn.execute("INSERT INTO responses VALUES ('broken', '{\"choices\": [')")
    weights = caches / "models" / "tiny-0123456789abcdef" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    capsys.readouterr()

    assert main(["cache", "verify"]) == 1  # bad entries found and left in place
    out = capsys.readouterr().out
    assert str(entry) in out and "broken" in out and str(weights.parent) in out
    assert "3 bad" in out and "--fix" in out
    assert entry.exists()

    report = verify_caches()
    assert sorted(b.cache for b in report.bad) == ["activations", "endpoint", "models"]
    assert report.checked == {"activations": 2, "endpoint": 4, "models": 1}

    assert main(["cache", "verify", "--fix"]) == 0
    out = capsys.readouterr().out
    assert "removed" in out and not entry.exists() and not weights.parent.exists()
    assert main(["cache", "verify"]) == 0
    assert "0 bad" in capsys.readouterr().out
    assert [c.entries for c in cache_info()] == [1, 3, 0]


def test_an_endpoint_cache_that_is_not_a_database_is_reported_and_fixed(
    caches: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = caches / "endpoint" / "responses.sqlite"
    db.write_bytes(b"garbage" * 200)
    assert cache_info()[1].entries == 0  # info still works
    report = verify_caches(["endpoint"])
    assert [(b.cache, b.path) for b in report.bad] == [("endpoint", db)]
    assert main(["cache", "verify", "--endpoint", "--fix"]) == 0
    assert not db.exists() and "removed" in capsys.readouterr().out


def test_clear_removes_only_what_is_asked_and_says_what(caches: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "clear", "--activations"]) == 0
    out = capsys.readouterr().out
    assert "activations" in out and "2 entries" in out and str(caches / "activations") in out
    assert _activation_entries(caches) == [] and [c.entries for c in cache_info()] == [0, 3, 1]

    removed = clear_caches(["endpoint"])
    assert [(c.name, c.entries) for c in removed] == [("endpoint", 3)]
    assert not (caches / "endpoint" / "responses.sqlite").exists()

    assert main(["cache", "clear", "--all"]) == 0
    assert "1 model" in capsys.readouterr().out and [c.entries for c in cache_info()] == [0, 0, 0]


def test_clear_without_a_choice_is_a_one_line_error(caches: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "clear"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "--all" in err
    assert len(_activation_entries(caches)) == 2  # nothing removed


def test_help_documents_every_environment_variable_the_caches_read(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["cache", "--help"])
    out = capsys.readouterr().out
    for name in ("OVERSEER_CACHE_DIR", "OVERSEER_ACTIVATION_CACHE_DIR", "XDG_CACHE_HOME"):
        assert name in out
