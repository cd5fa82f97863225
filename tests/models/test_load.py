from pathlib import Path

import pytest
import torch

from overseer.errors import OverseerError
from overseer.models import LADDER, load_model, resolve_model


def test_local_directory_loads_causal_and_encoder(tiny_causal: Path, tiny_encoder: Path) -> None:
    causal = load_model(str(tiny_causal), device="cpu")
    encoder = load_model(str(tiny_encoder), device="cpu")
    assert causal.kind == "causal" and causal.num_layers == 3
    assert encoder.kind == "encoder" and encoder.num_layers == 2
    assert causal.tokenizer.pad_token is not None
    assert not any(p.requires_grad is False for p in causal.model.parameters())  # weights are real parameters


def test_truncation_keeps_first_layers_and_matches_full_model_hidden_state(tiny_causal: Path) -> None:
    full = load_model(str(tiny_causal), device="cpu")
    cut = load_model(str(tiny_causal), num_layers=2, device="cpu")
    assert cut.num_layers == 2
    ids = full.tokenizer(["paris is in france"], return_tensors="pt")
    with torch.inference_mode():
        full_hidden = full.backbone(**ids, output_hidden_states=True).hidden_states
        cut_hidden = cut.backbone(**ids, output_hidden_states=True).hidden_states
    assert len(cut_hidden) == 3
    # The truncated model's block outputs equal the full model's first blocks (before the final norm).
    torch.testing.assert_close(cut_hidden[1], full_hidden[1])


def test_truncation_out_of_range_is_a_clear_error(tiny_causal: Path) -> None:
    with pytest.raises(OverseerError, match="num_layers=9 is out of range"):
        load_model(str(tiny_causal), num_layers=9, device="cpu")


def test_fingerprint_changes_with_truncation_and_is_stable(tiny_causal: Path) -> None:
    a = resolve_model(str(tiny_causal)).fingerprint()
    assert a == resolve_model(str(tiny_causal)).fingerprint()
    assert a != resolve_model(str(tiny_causal), num_layers=2).fingerprint()


def test_unknown_names_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(OverseerError, match="GGUF file .* does not exist"):
        resolve_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(OverseerError, match="no config.json"):
        resolve_model(str(tmp_path))
    with pytest.raises(OverseerError, match="allowed: .*smollm2-135m"):
        resolve_model("./not/a/model")


def test_hub_id_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = resolve_model("EleutherAI/pythia-14m@main")
    assert spec.source == "EleutherAI/pythia-14m" and spec.revision == "main"
    with pytest.raises(OverseerError, match="cannot load model 'EleutherAI/pythia-14m'"):
        load_model("EleutherAI/pythia-14m", device="cpu")


def test_ladder_rungs_resolve_to_packaged_weights() -> None:
    assert len(LADDER) >= 4
    for name, rung in LADDER.items():
        spec = resolve_model(name)
        assert spec.num_layers == rung.num_layers
        assert Path(spec.source).exists()


@pytest.mark.slow
def test_packaged_gguf_model_loads_and_predicts_paris() -> None:
    lm = load_model("smollm2-135m", device="cpu")
    assert lm.kind == "causal" and lm.num_layers == 30
    ids = lm.tokenizer(["The capital of France is"], return_tensors="pt")
    with torch.inference_mode():
        logits = lm.model(**ids).logits
    assert lm.tokenizer.decode(logits[0, -1].argmax()).strip() == "Paris"
