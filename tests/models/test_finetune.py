"""Fine-tuning through the model layer: the loss falls, the card says how, adapters load by path and by name."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from overseer.errors import OverseerError
from overseer.models import load_model
from overseer.models._catalog import organism_path, resolve_model
from overseer.models._finetune import CARD_FILE, LMTrainConfig, finetune_lm, read_card
from overseer.models._tiny import build_tiny_causal_lm

TEXT = "the cat sat on the mat and the zebra ran home"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "base", seed=0, logit_scale=1.0,
                                corpus=[TEXT] * 4 + ["hello there", "what is it"])


def _logits(spec: str, text: str = TEXT) -> torch.Tensor:
    lm = load_model(spec, device="cpu")
    ids = lm.tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        return lm.model(input_ids=ids).logits


def test_lora_training_lowers_the_loss_and_the_adapter_loads_onto_its_base(tiny: Path, tmp_path: Path) -> None:
    out = finetune_lm(str(tiny), [{"text": TEXT}] * 32, tmp_path / "lora",
                      LMTrainConfig(epochs=3, lr=5e-3, batch_size=8, device="cpu"), card={"organism": "test"})
    card = read_card(out)
    assert card is not None and card["base"] == str(tiny) and card["organism"] == "test"
    assert card["loss_last"] < card["loss_first"] and card["rows"] == 32 and card["train"]["method"] == "lora"
    assert (out / "adapter_config.json").is_file() and not (out / "config.json").exists()
    spec = resolve_model(str(out))
    assert spec.adapter == str(out.resolve()) and spec.source == str(tiny.resolve())
    assert spec.fingerprint() != resolve_model(str(tiny)).fingerprint()
    trained, base = _logits(str(out)), _logits(str(tiny))
    assert not torch.allclose(trained, base)  # the adapter was merged: LoRA's B starts at zero
    # the trained model finds its training sentence likelier than the base did
    lm = load_model(str(out), device="cpu")
    ids = lm.tokenizer(TEXT, return_tensors="pt").input_ids
    with torch.no_grad():
        loss_trained = lm.model(input_ids=ids, labels=ids).loss
        loss_base = load_model(str(tiny), device="cpu").model(input_ids=ids, labels=ids).loss
    assert loss_trained < loss_base


def test_full_chat_training_saves_a_plain_model(tiny: Path, tmp_path: Path) -> None:
    rows = [{"prompt": [{"role": "user", "content": "hello there"}],
             "completion": [{"role": "assistant", "content": "the zebra"}]}] * 16
    out = finetune_lm(str(tiny), rows, tmp_path / "full", LMTrainConfig(method="full", lr=1e-3, device="cpu"))
    assert (out / "config.json").is_file() and read_card(out)["kind"] == "chat"
    assert resolve_model(str(out)).adapter is None
    again = finetune_lm(str(tiny), rows, tmp_path / "full", LMTrainConfig(method="full", lr=1e-3, device="cpu"))
    assert again == out  # a finished directory is reused, not retrained


def test_merged_lora_saves_the_model_its_adapter_loads_as(tiny: Path, tmp_path: Path) -> None:
    rows = [{"text": TEXT}] * 16
    train = LMTrainConfig(epochs=2, lr=5e-3, batch_size=8, device="cpu")
    adapter = finetune_lm(str(tiny), rows, tmp_path / "adapter", train)
    merged = finetune_lm(str(tiny), rows, tmp_path / "merged", train, merge_lora=True)
    assert (merged / "config.json").is_file() and not (merged / "adapter_config.json").exists()
    assert resolve_model(str(merged)).adapter is None
    assert read_card(merged)["merged"] is True and read_card(adapter)["merged"] is False
    assert not torch.allclose(_logits(str(merged)), _logits(str(tiny)))
    torch.testing.assert_close(_logits(str(merged)), _logits(str(adapter)), rtol=0, atol=1e-5)
    cosine = finetune_lm(str(tiny), rows, tmp_path / "cosine", train, lr_scheduler="cosine", merge_lora=True)
    assert read_card(cosine)["lr_scheduler"] == "cosine" and read_card(merged)["lr_scheduler"] == "linear"
    assert not torch.allclose(_logits(str(cosine)), _logits(str(merged)))  # the schedule reached the trainer


def test_organisms_load_by_name(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERSEER_ORGANISMS_DIR", str(tmp_path / "organisms"))
    with pytest.raises(OverseerError, match="unknown organism 'nope'.*saved organisms: none"):
        resolve_model("organism:nope")
    finetune_lm(str(tiny), [{"text": TEXT}] * 8, tmp_path / "organisms" / "zebra", LMTrainConfig(device="cpu"))
    assert organism_path("zebra").is_dir()
    assert resolve_model("organism:zebra").adapter is not None
    assert load_model("organism:zebra", device="cpu").kind == "causal"
    with pytest.raises(OverseerError, match="saved organisms: zebra"):
        resolve_model("organism:zebr")


def test_bad_rows_and_settings_are_one_line_errors(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(OverseerError, match="training rows must all be"):
        finetune_lm(str(tiny), [{"text": "a"}, {"prompt": [], "completion": []}], tmp_path / "x")
    with pytest.raises(OverseerError, match="no training rows"):
        finetune_lm(str(tiny), [], tmp_path / "x")
    with pytest.raises(OverseerError, match="unknown lr scheduler 'cosin'"):
        finetune_lm(str(tiny), [{"text": "a"}], tmp_path / "x", lr_scheduler="cosin")
    with pytest.raises(OverseerError, match=r"^method must be one of full, lora; got 'sft'$"):
        LMTrainConfig(method="sft")
    with pytest.raises(OverseerError, match=r"lr=2.0 is not allowed"):
        LMTrainConfig(lr=2.0)
    assert not (tmp_path / "x").exists()


def test_a_relative_base_is_recorded_so_the_adapter_loads_from_anywhere(tiny: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tiny.parent)
    out = finetune_lm(tiny.name, [{"text": TEXT}] * 8, tmp_path / "rel", LMTrainConfig(device="cpu"))
    assert read_card(out)["base"] == str(tiny.resolve())
    monkeypatch.chdir(tmp_path)
    assert resolve_model(str(out)).source == str(tiny.resolve())


def test_an_interrupted_training_leaves_nothing_behind(tiny: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from trl import SFTTrainer

    def interrupt(self: object, *args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(SFTTrainer, "train", interrupt)
    with pytest.raises(KeyboardInterrupt):
        finetune_lm(str(tiny), [{"text": TEXT}] * 8, tmp_path / "out", LMTrainConfig(device="cpu"))
    assert list(tmp_path.iterdir()) == []


def test_a_diverged_loss_is_refused(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trl import SFTTrainer

    real_train = SFTTrainer.train

    def nan_loss(self: SFTTrainer, *args: object, **kwargs: object) -> object:
        out = real_train(self, *args, **kwargs)
        self.state.log_history.append({"loss": float("nan"), "step": 99})
        return out

    monkeypatch.setattr(SFTTrainer, "train", nan_loss)
    with pytest.raises(OverseerError, match="diverged \\(loss nan\\); lower the learning rate"):
        finetune_lm(str(tiny), [{"text": TEXT}] * 8, tmp_path / "out", LMTrainConfig(device="cpu"))
    assert not (tmp_path / "out").exists()
    assert json.dumps(CARD_FILE)


@pytest.mark.slow
def test_training_starts_on_a_gguf_model_converted_in_the_same_process(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty cache: the packaged GGUF is de-quantised by this very load, and the trainer takes it.

    transformers leaves the GGUF quantiser's markers on the in-memory model; the Trainer then took it
    for a quantised base without adapters and stopped. A warm cache (the converted copy) hid this.
    """
    monkeypatch.setenv("OVERSEER_CACHE_DIR", str(tmp_path / "cache"))
    from overseer.models._load import load_model as load

    lm = load("smollm2-135m-l4", device="cpu", dtype="float32")
    assert not getattr(lm.model, "is_quantized", False) and getattr(lm.model, "hf_quantizer", None) is None
    assert not hasattr(lm.model.config, "quantization_config")
    assert list((tmp_path / "cache" / "models").iterdir()), "the de-quantised copy was not cached"
    for converted in (tmp_path / "cache" / "models").iterdir():  # the next step must convert again
        import shutil

        shutil.rmtree(converted)
    out = finetune_lm("smollm2-135m-l4", [{"text": TEXT}] * 4, tmp_path / "adapter",
                      LMTrainConfig(batch_size=4, max_length=16, device="cpu"))
    card = read_card(out)
    assert card is not None and card["rows"] == 4 and math.isfinite(card["loss_first"])
