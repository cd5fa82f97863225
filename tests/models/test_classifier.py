"""SequenceClassifier on tiny random models: training, exact save/load across processes, errors, TRL rewards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from overseer.errors import OverseerError
from overseer.models import ClassifierConfig, SequenceClassifier, TrainingDivergedError, fit_classifier

POS = ("yes the city is paris", "true the answer is good", "yes london is in england", "good movie . yes")
NEG = ("no the movie is bad", "false the answer is bad . bad", "no tokyo is in france", "bad review , no")

# name: (model fixture, config overrides, learning rate)
CASES = {
    "causal-full": ("tiny_causal", {}, 5e-3),
    "causal-lora": ("tiny_causal", {"lora": True}, 2e-2),
    "encoder-full": ("tiny_encoder", {}, 5e-3),
    "encoder-lora": ("tiny_encoder", {"lora": True, "target_modules": ("query", "value")}, 2e-2),
}


def _data(n: int = 16) -> tuple[list[str], np.ndarray]:
    """Texts of varied lengths (so batches are padded) whose label is their sentiment word."""
    texts = [(POS if i % 2 else NEG)[(i // 2) % 4] + " one" * (i % 5) for i in range(n)]
    return texts, np.array([i % 2 for i in range(n)], dtype=np.float32)


def soft_xent(logits: torch.Tensor, targets: torch.Tensor, step_frac: float) -> torch.Tensor:
    """Cross-entropy against (batch, 2) target distributions."""
    return -(targets * torch.log_softmax(logits.float(), -1)).sum(-1).mean()


def _fit(clf: SequenceClassifier, lr: float, epochs: float = 3) -> list[float]:
    texts, y = _data()
    return fit_classifier(clf, texts, np.stack([1 - y, y], -1), soft_xent, lr=lr, epochs=epochs, batch_size=4,
                          use_cpu=True).loss_curve


def bradley_terry(logits: torch.Tensor, targets: torch.Tensor, step_frac: float) -> torch.Tensor:
    """-log sigmoid of each pair's score gap (``logits[:, 1] - logits[:, 0]``)."""
    return -torch.nn.functional.logsigmoid(logits[:, 1] - logits[:, 0]).mean()


def _fit_pairs(clf: SequenceClassifier, lr: float) -> tuple[Any, list[str], list[str], list[str]]:
    """Bradley-Terry on (positive, negative) pairs of :func:`_data`: the fit, all texts, chosen and rejected."""
    texts, y = _data(16)
    chosen = [t for t, label in zip(texts, y, strict=True) if label == 1]
    rejected = [t for t, label in zip(texts, y, strict=True) if label == 0]
    fit = fit_classifier(clf, chosen, np.ones(len(chosen), np.float32), bradley_terry, pairs=rejected, lr=lr,
                         epochs=6, batch_size=4, use_cpu=True)
    return fit, texts, chosen, rejected


class _Trained(dict):
    """Trained classifiers by case name, each built and trained on first use."""

    def __init__(self, request: pytest.FixtureRequest):
        super().__init__()
        self.request = request

    def __missing__(self, name: str) -> SequenceClassifier:
        fixture, overrides, lr = CASES[name]
        model = str(self.request.getfixturevalue(fixture))
        clf = SequenceClassifier.build(ClassifierConfig(model, max_length=64, **overrides), seed=1, device="cpu")
        _fit(clf, lr)
        self[name] = clf
        return clf


@pytest.fixture(scope="module")
def trained(request: pytest.FixtureRequest) -> dict[str, SequenceClassifier]:
    """One classifier per case, trained for a few steps; shared by the module's tests."""
    return _Trained(request)


@pytest.mark.parametrize("case", list(CASES))
def test_training_changes_the_predictions_and_lowers_the_loss(case: str, request: pytest.FixtureRequest) -> None:
    fixture, overrides, lr = CASES[case]
    clf = SequenceClassifier.build(ClassifierConfig(str(request.getfixturevalue(fixture)), **overrides), seed=0,
                                   device="cpu")
    texts, y = _data()
    before = clf.predict_proba(texts)
    np.testing.assert_array_equal(before, np.full(len(texts), 0.5, dtype=np.float32))  # the zero head
    params = {k: v.detach().clone() for k, v in clf.named_parameters() if v.requires_grad}
    curve = _fit(clf, lr, epochs=4)
    after = clf.predict_proba(texts)
    assert len(curve) == 16 and curve[0] == pytest.approx(np.log(2), abs=1e-4)
    assert np.mean(curve[-4:]) < 0.8 * np.mean(curve[:4])
    assert np.abs(after - before).max() > 0.1
    xent = -np.mean(y * np.log(after) + (1 - y) * np.log(1 - after))
    assert xent < np.log(2) - 0.05  # the training loss measured on the predictions fell too
    moved = {k for k, v in clf.named_parameters() if v.requires_grad and not torch.equal(params[k], v.detach())}
    assert moved == set(params) and any(k.startswith("head.") for k in moved)
    if overrides.get("lora"):
        assert all("lora_" in k or k.startswith("head.") for k in params)
    assert clf.standardized and float(clf.model_.feature_scale.min()) != 1.0


def test_save_then_load_in_a_fresh_process_gives_identical_probabilities(
    trained: dict[str, SequenceClassifier], tmp_path: Path
) -> None:
    texts, _ = _data(12)
    texts += ["paris is in england", "the answer is three"]  # texts the classifier never trained on
    dirs, expected = [], {}
    for case in CASES:
        clf = trained[case]
        expected[case] = clf.predict_proba(texts)
        assert expected[case].dtype == np.float32 and expected[case].std() > 1e-3
        dirs.append(str(clf.save(tmp_path / case)))
    # Same intra-op thread count as this process: reductions split across threads in another order
    # could differ in the last bit, which would say nothing about what was saved.
    code = (
        "import json, sys\nimport numpy as np\nimport torch\nfrom overseer.models import SequenceClassifier\n"
        f"torch.set_num_threads({torch.get_num_threads()})\n"
        "texts = json.loads(sys.argv[1])\n"
        "for d in sys.argv[2:]:\n"
        "    np.save(d + '.npy', SequenceClassifier.load(d, device='cpu').predict_proba(texts))\n"
    )
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(texts), *dirs], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for case, d in zip(CASES, dirs, strict=True):
        loaded = np.load(d + ".npy")
        assert loaded.dtype == np.float32
        np.testing.assert_array_equal(loaded, expected[case], err_msg=case)


@pytest.mark.parametrize("case", ["causal-full", "causal-lora"])
def test_every_saved_part_is_needed_for_those_predictions(
    case: str, trained: dict[str, SequenceClassifier], tmp_path: Path
) -> None:
    """A load that re-initialised the head, the body/adapters or the statistics would fail the round trip."""
    clf = trained[case]
    texts, _ = _data(12)
    want = clf.predict_proba(texts)
    fresh = SequenceClassifier.build(clf.config, seed=clf.seed, device="cpu")  # what a load would start from
    assert np.all(fresh.predict_proba(texts) == 0.5)  # fresh head
    with torch.no_grad():  # trained head and statistics on a fresh body (fresh adapters for LoRA)
        fresh.model_.head.load_state_dict(clf.model_.head.state_dict())
        fresh.model_.feature_mean.copy_(clf.model_.feature_mean)
        fresh.model_.feature_scale.copy_(clf.model_.feature_scale)
    assert np.abs(fresh.predict_proba(texts) - want).max() > 1e-3
    loaded = SequenceClassifier.load(clf.save(tmp_path / "clf"), device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(texts), want)
    with torch.no_grad():  # identity statistics instead of the saved ones
        loaded.model_.feature_mean.zero_()
        loaded.model_.feature_scale.fill_(1.0)
    assert np.abs(loaded.predict_proba(texts) - want).max() > 1e-3


@pytest.mark.parametrize("case", ["causal-full", "encoder-lora"])
def test_saved_directory_carries_the_config_and_only_the_trained_weights(
    case: str, trained: dict[str, SequenceClassifier], tmp_path: Path
) -> None:
    clf = trained[case]
    path = clf.save(tmp_path / "clf")
    meta = json.loads((path / "classifier.json").read_text())
    assert meta["format_version"] == 1 and meta["seed"] == 1 and meta["standardized"] is True
    assert ClassifierConfig.from_dict(meta["config"]) == clf.config
    assert clf.config.pooling == ("last" if case.startswith("causal") else "mean")  # resolved at build
    files = {p.name for p in path.iterdir()}
    if clf.config.lora:
        assert {"head.safetensors", "adapter_model.safetensors", "adapter_config.json"} <= files
        assert "body.safetensors" not in files
    else:
        assert {"head.safetensors", "body.safetensors", "tokenizer"} <= files
    loaded = SequenceClassifier.load(path, device="cpu")
    assert loaded.config == clf.config and loaded.seed == clf.seed and loaded.standardized
    for (k, a), (k2, b) in zip(clf.model_.state_dict().items(), loaded.model_.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b), k
    assert [p.name for p in tmp_path.iterdir()] == ["clf"]  # no temporary directories left behind


def test_load_refuses_directories_that_are_not_this_format(
    trained: dict[str, SequenceClassifier], tmp_path: Path
) -> None:
    saved = trained["causal-lora"].save(tmp_path / "saved")

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OverseerError, match=r"empty has no classifier\.json.*format version 1") as info:
        SequenceClassifier.load(empty)
    assert "\n" not in str(info.value)

    no_config = Path(shutil.copytree(saved, tmp_path / "no-config"))
    (no_config / "classifier.json").unlink()
    with pytest.raises(OverseerError, match=r"no-config has no classifier\.json"):
        SequenceClassifier.load(no_config)

    future = Path(shutil.copytree(saved, tmp_path / "future"))
    meta = json.loads((future / "classifier.json").read_text())
    (future / "classifier.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(OverseerError, match=r"future has format version 99; this overseer reads version 1"):
        SequenceClassifier.load(future)

    other = Path(shutil.copytree(saved, tmp_path / "other"))
    (other / "classifier.json").write_text(json.dumps({**meta, "format": "something.else"}))
    with pytest.raises(OverseerError, match="not a SequenceClassifier header"):
        SequenceClassifier.load(other)

    no_weights = Path(shutil.copytree(saved, tmp_path / "no-weights"))
    (no_weights / "adapter_model.safetensors").unlink()
    with pytest.raises(OverseerError, match=r"no-weights is missing adapter_model\.safetensors"):
        SequenceClassifier.load(no_weights)

    with pytest.raises(OverseerError, match="does not exist"):
        SequenceClassifier.load(tmp_path / "nowhere")


def test_save_replaces_a_saved_classifier_but_not_other_directories(
    trained: dict[str, SequenceClassifier], tmp_path: Path
) -> None:
    clf = trained["causal-full"]
    clf.save(tmp_path / "clf")
    clf.save(tmp_path / "clf")  # a second save replaces the first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(OverseerError, match="exists and is not a saved classifier"):
        clf.save(mine)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_reward_function_scores_prompt_plus_completion(trained: dict[str, SequenceClassifier]) -> None:
    clf = trained["causal-full"]
    reward = clf.reward_function()
    assert reward.__name__ == "classifier_logit"
    prompts = ["question : is paris in france ? answer :"] * 2 + ["is tokyo in japan ?"]
    completions = [" yes", " no the movie is bad", " yes"]
    values = reward(prompts=prompts, completions=completions, answer=["yes", "yes", "yes"], trainer_state=None)
    assert isinstance(values, list) and len(values) == 3 and all(type(v) is float for v in values)
    assert values == [float(s) for s in clf.scores([p + c for p, c in zip(prompts, completions, strict=True)])]
    assert abs(values[0] - values[1]) > 1e-3  # another completion, another score

    probability = clf.reward_function(output="probability", name="verifier")
    assert probability.__name__ == "verifier"
    probs = probability(prompts, completions)
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-np.array(values))), rtol=1e-5)
    assert all(0 <= p <= 1 for p in probs)

    chat_prompts = [[{"role": "user", "content": "is paris in france ?"}]] * 2
    chat_completions = [[{"role": "assistant", "content": "yes"}], [{"role": "assistant", "content": "no no bad"}]]
    chat = reward(chat_prompts, chat_completions)
    assert len(chat) == 2 and all(type(v) is float for v in chat) and abs(chat[0] - chat[1]) > 1e-3
    # no chat template on the tiny tokenizer: the Human/Assistant format, completion as the answer
    text = clf.conversation_text(chat_prompts[0], chat_completions[0])
    assert text == "Human: is paris in france ?\n\nAssistant: yes"
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "yes"}]}]
    assert reward(chat_prompts[:1], [parts]) == chat[:1]

    with pytest.raises(OverseerError, match="one prompt per completion"):
        reward(prompts[:1], completions)
    with pytest.raises(OverseerError, match="unknown reward output 'prob'"):
        clf.reward_function(output="prob")


def test_bradley_terry_on_compared_pairs_trains_a_verifier(tiny_causal: Path) -> None:
    """The loss is any callable: a verifier learns to score the preferred text of each pair higher."""
    clf = SequenceClassifier.build(ClassifierConfig(str(tiny_causal), pairing="compare"), seed=0, device="cpu")
    fit, texts, chosen, rejected = _fit_pairs(clf, lr=5e-3)
    assert fit.loss_curve[0] == pytest.approx(np.log(2), abs=1e-4) and fit.loss_curve[-1] < 0.5
    assert (clf.scores(chosen) > clf.scores(rejected)).all()
    np.testing.assert_allclose(clf.scores(chosen, rejected), clf.scores(chosen) - clf.scores(rejected), atol=1e-5)


def test_early_stopping_keeps_the_best_held_out_weights(tiny_causal: Path) -> None:
    clf = SequenceClassifier.build(ClassifierConfig(str(tiny_causal)), seed=0, device="cpu")
    texts, y = _data(20)
    held_out = (1 - y[16:]).astype(np.float32)  # contradicts the training labels: its loss rises
    fit = fit_classifier(clf, texts[:16], np.stack([1 - y[:16], y[:16]], -1), soft_xent, lr=1e-2, epochs=10,
                         batch_size=4, eval_texts=texts[16:], eval_targets=np.stack([1 - held_out, held_out], -1),
                         early_stopping_patience=1, use_cpu=True)
    evals = [h["eval_loss"] for h in fit.log_history if "eval_loss" in h]
    assert 2 <= len(evals) < 10 and fit.stopped_at is not None and fit.best_eval_loss == min(evals)
    p = clf.predict_proba(texts[16:])
    assert -np.mean(held_out * np.log(p) + (1 - held_out) * np.log(1 - p)) == pytest.approx(min(evals), abs=1e-4)


def test_bad_inputs_are_one_clear_line(tiny_causal: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clf = SequenceClassifier.build(ClassifierConfig(str(tiny_causal), standardize=False), seed=0, device="cpu")
    texts, y = _data(8)
    with pytest.raises(OverseerError, match=r"targets must have one row per text \(8\)"):
        fit_classifier(clf, texts, y[:4], soft_xent)
    with pytest.raises(OverseerError, match="not one string"):
        clf.predict_proba("one text")
    with pytest.raises(OverseerError, match="pairs must match texts"):
        clf.scores(texts, texts[:2])
    with pytest.raises(TrainingDivergedError, match=r"loss became nan at step 0 \(lr=0\.001\)") as info:
        fit_classifier(clf, texts, y, lambda logits, t, f: logits.sum() * float("nan"), lr=1e-3, use_cpu=True)
    assert isinstance(info.value, OverseerError) and "\n" not in str(info.value)
    for bad in ({"pooling": "max"}, {"pairing": "single"}, {"lora_r": 0}, {"lora_dropout": 1.0}, {"dtype": "fp8"},
                {"lora": "yes"}, {"max_length": 1.5}):
        with pytest.raises(OverseerError):
            ClassifierConfig("x", **bad)
    with pytest.raises(OverseerError, match="unknown classifier config field 'layers'"):
        ClassifierConfig.from_dict({"model": "x", "layers": 3})
    cfg = ClassifierConfig("x", target_modules=["q_proj", "v_proj"], lora=True)
    assert cfg.target_modules == ("q_proj", "v_proj") and ClassifierConfig.from_dict(cfg.to_dict()) == cfg


def test_importing_the_model_layer_does_not_import_torch() -> None:
    code = "import sys, overseer.models; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("fixture", ["tiny_causal", "tiny_causal_right"])
def test_likelihood_pooling_reads_the_language_models_own_token_log_probabilities(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    """Known answer: with a head that passes one feature through, the score is that text's mean (or lowest)
    next-token log-probability as the plain language model computes it alone, whatever the padding side."""
    from transformers import AutoModelForCausalLM

    model = str(request.getfixturevalue(fixture))
    torch.set_num_threads(1)
    clf = SequenceClassifier.build(ClassifierConfig(model, pooling="likelihood", pairing="compare"), seed=0,
                                   device="cpu")
    texts = ["yes the city is paris", "no", "good movie . yes one one one", "bad review , no"]
    lm = AutoModelForCausalLM.from_pretrained(model).eval()
    expected = []
    for text in texts:
        ids = torch.tensor([clf.encode([text])[0]["input_ids"]])
        with torch.no_grad():
            logp = torch.log_softmax(lm(ids).logits[0, :-1].float(), -1)
        taken = logp[torch.arange(ids.shape[1] - 1), ids[0, 1:]]
        expected.append((taken.mean().item(), taken.min().item()) if len(taken) else (0.0, 0.0))
    head = clf.model_.head
    for column in (0, 1):
        with torch.no_grad():
            head.weight.zero_()
            head.bias.zero_()
            head.weight[1, column] = 1.0
        np.testing.assert_allclose(clf.scores(texts, batch_size=4), [e[column] for e in expected], atol=1e-4)


def test_likelihood_pooling_trains_the_language_model_and_saves_it(tiny_causal: Path, tmp_path: Path) -> None:
    """Bradley-Terry on the likelihood features moves the body itself; the saved classifier scores the same."""
    torch.set_num_threads(1)
    clf = SequenceClassifier.build(ClassifierConfig(str(tiny_causal), pooling="likelihood", pairing="compare"),
                                   seed=0, device="cpu")
    before = {k: v.detach().clone() for k, v in clf.model_.body.named_parameters()}
    fit, texts, chosen, rejected = _fit_pairs(clf, lr=5e-3)
    assert fit.loss_curve[-1] < fit.loss_curve[0]
    assert (clf.scores(chosen) > clf.scores(rejected)).mean() >= 0.75
    moved = [k for k, v in clf.model_.body.named_parameters() if not torch.equal(v, before[k])]
    assert any("lm_head" in k or "embed_tokens" in k for k in moved) and any("layers" in k for k in moved)
    clf.save(tmp_path / "v")
    again = SequenceClassifier.load(tmp_path / "v", device="cpu")
    np.testing.assert_allclose(again.scores(texts), clf.scores(texts), atol=1e-5)


def test_likelihood_pooling_with_lora_trains_only_adapters_and_saves_them(tiny_causal: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    config = ClassifierConfig(str(tiny_causal), pooling="likelihood", pairing="compare", lora=True)
    clf = SequenceClassifier.build(config, seed=0, device="cpu")
    frozen = {k: v.detach().clone() for k, v in clf.model_.body.named_parameters() if "lora_" not in k}
    fit, texts, chosen, rejected = _fit_pairs(clf, lr=2e-2)
    assert fit.loss_curve[-1] < fit.loss_curve[0]
    assert all(torch.equal(v, frozen[k]) for k, v in clf.model_.body.named_parameters() if "lora_" not in k)
    clf.save(tmp_path / "v")
    np.testing.assert_allclose(SequenceClassifier.load(tmp_path / "v", device="cpu").scores(texts), clf.scores(texts),
                               atol=1e-5)


def test_likelihood_pooling_needs_a_causal_model(tiny_encoder: Path) -> None:
    with pytest.raises(OverseerError, match="pooling 'likelihood'.*encoder"):
        SequenceClassifier.build(ClassifierConfig(str(tiny_encoder), pooling="likelihood"), seed=0, device="cpu")
