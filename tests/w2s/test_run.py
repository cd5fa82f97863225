import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from overseer.data import BinaryDataset, dataset, load_dataset
from overseer.errors import OverseerError
from overseer.models import ActivationCache
from overseer.w2s import HeadConfig, W2SConfig, run
from overseer.w2s.splits import w2s_splits

FAST_HEAD = HeadConfig(l2_grid=(1.0, 100.0))  # a short grid: the default's six values cost time, not coverage


def _config(tiny_encoder: Path, tiny_causal: Path, **overrides) -> W2SConfig:
    base = W2SConfig(
        dataset="geo_facts", dataset_args={"limit": 600}, weak=str(tiny_encoder), strong=str(tiny_causal),
        n_train=120, n_test=100, head=FAST_HEAD, n_bootstrap=200, seeds=(0,), baseline_draws=2,
    )
    return replace(base, **overrides)


def test_run_writes_a_complete_directory_and_reuses_it(tiny_encoder: Path, tiny_causal: Path, tmp_path: Path) -> None:
    cfg = _config(tiny_encoder, tiny_causal)
    cache = ActivationCache(root=tmp_path / "cache", device="cpu")
    result = run(cfg, out=tmp_path / "runs", cache=cache)
    assert not result.reused
    files = {p.name for p in result.path.iterdir()}
    assert {"config.json", "versions.json", "resolved_config.json", "metrics.json", "summary.json",
            "predictions.parquet", "accuracy.png"} <= files
    record = json.loads((result.path / "metrics.json").read_text())
    assert list(record)[:3] == ["metrics", "config", "timings"] and record == result.record
    assert record["config"]["n_train"] == 120 and record["config"]["device"] is None  # the resolved config
    assert record["timings"]["wall_s"] > 0 and record["timings"]["jobs"] == {"computed": 4, "loaded": 0}
    assert record["n_seeds"] == 1 and record["dataset"]["name"] == "geo_facts"
    metrics = record["metrics"]
    assert metrics == result.metrics
    for role in ("weak", "student", "baseline", "ceiling"):
        for metric in ("accuracy", "auroc"):
            entry = metrics[role][metric]
            assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]
    assert set(metrics["pgr"]) == set(metrics["baseline_pgr"]) - {"draws"} == {"accuracy", "auroc"}
    assert metrics["baseline"]["draws"]["n"] == 2  # the flip draws, with their spread
    pgr = metrics["pgr"]["accuracy"]
    assert (pgr["value"] is None) == (pgr["reason"] is not None)
    predictions = pd.read_parquet(result.path / "predictions.parquet")
    assert set(predictions["split"]) == {"test", "weak_label"}
    assert (predictions["split"] == "test").sum() == 100
    assert cache.stats["misses"] == 2  # 2 models, each embeds every text the run needs in one pass

    again = run(cfg, out=tmp_path / "runs", cache=ActivationCache(root=tmp_path / "cache", device="cpu"))
    assert again.reused and again.path == result.path
    assert again.metrics == result.metrics and again.summary_line() == result.summary_line()

    warm = ActivationCache(root=tmp_path / "cache", device="cpu")
    forced = run(cfg, out=tmp_path / "runs", force=True, cache=warm)
    assert warm.stats == {"hits": 2, "misses": 0} and warm.loaded_models == []  # no model was even loaded
    assert forced.metrics["student"]["accuracy"]["value"] == result.metrics["student"]["accuracy"]["value"]


def test_the_baseline_is_trained_on_several_flip_draws_and_reports_their_spread(
        tiny_encoder: Path, tiny_causal: Path, tmp_path: Path) -> None:
    cache = ActivationCache(root=tmp_path / "cache", device="cpu")
    one = run(_config(tiny_encoder, tiny_causal, baseline_draws=1), out=tmp_path / "runs", cache=cache)
    three = run(_config(tiny_encoder, tiny_causal, baseline_draws=3), out=tmp_path / "runs", cache=cache)
    assert three.timings["jobs"] == {"computed": 1, "loaded": 3}  # only the baseline depends on the draws
    a, b = (pd.read_parquet(r.path / "predictions.parquet") for r in (one, three))
    assert [c for c in b.columns if c.startswith("baseline")] == ["baseline_prob", "baseline_prob_draw1",
                                                                   "baseline_prob_draw2"]
    # Draw 0 is the single draw of before: every random stream but the new draws' is unchanged.
    for column in ("weak_prob", "student_prob", "baseline_prob", "ceiling_prob"):
        np.testing.assert_array_equal(a[column], b[column])
    assert not np.array_equal(b["baseline_prob"], b["baseline_prob_draw1"])  # independent flips
    test = b[b["split"] == "test"]
    per_draw = [float(np.mean((test[c] >= 0.5) == test["label"])) for c in
                ("baseline_prob", "baseline_prob_draw1", "baseline_prob_draw2")]
    draws = three.metrics["baseline"]["draws"]
    assert draws["n"] == 3 and draws["accuracy"]["values"] == pytest.approx(per_draw)
    assert three.metrics["baseline"]["accuracy"]["value"] == pytest.approx(np.mean(per_draw))
    assert draws["accuracy"]["sd"] == pytest.approx(np.std(per_draw, ddof=1))
    assert three.metrics["baseline_pgr"]["draws"]["n"] == 3
    assert len(three.record["regularisation"]["chosen"]["0"]["baseline"]) == 3  # each draw chose its own L2
    spread = draws["accuracy"]
    assert (f"(3 flip draws: sd {spread['sd']:.3f}, {spread['min']:.3f} to {spread['max']:.3f})"
            in three.summary_line())
    assert "flip draws" not in one.summary_line() and one.metrics["baseline"]["draws"]["n"] == 1


def test_several_seeds_pool_into_one_interval(tiny_encoder: Path, tiny_causal: Path, tmp_path: Path) -> None:
    result = run(_config(tiny_encoder, tiny_causal, seeds=(0, 1)), out=tmp_path,
                 cache=ActivationCache(root=tmp_path / "cache", device="cpu"))
    assert result.record["n_seeds"] == 2 and set(result.record["per_seed"]) == {"0", "1"}


def test_student_never_sees_ground_truth_of_its_split(tiny_encoder: Path, tiny_causal: Path, tmp_path: Path) -> None:
    """Flip the true labels of the student's split: the student's predictions must not change."""
    clean = load_dataset("geo_facts", limit=600)
    student_ids = set(w2s_splits(clean, 120, 100, seed=0).weak_label.ids)
    poisoned_examples = tuple(
        replace(ex, label=1 - ex.label) if ex.id in student_ids else ex for ex in clean.examples
    )

    @dataset("test_poisoned_geo", offline=True, description="test only", source="test")
    def _poisoned() -> BinaryDataset:
        return replace(clean, name="test_poisoned_geo", examples=poisoned_examples)

    cache_root = tmp_path / "cache"
    a = run(_config(tiny_encoder, tiny_causal), out=tmp_path, cache=ActivationCache(cache_root, device="cpu"))
    b = run(_config(tiny_encoder, tiny_causal, dataset="test_poisoned_geo", dataset_args={}), out=tmp_path,
            cache=ActivationCache(cache_root, device="cpu"))
    pa, pb = (pd.read_parquet(r.path / "predictions.parquet") for r in (a, b))
    test_a, test_b = pa[pa.split == "test"], pb[pb.split == "test"]
    assert list(test_a["id"]) == list(test_b["id"])
    np.testing.assert_array_equal(test_a["student_prob"], test_b["student_prob"])
    # The student's L2 penalty was chosen by cross-validation, on its weak labels alone.
    assert a.record["regularisation"]["chosen"]["0"]["student"] in HeadConfig().l2_grid
    assert a.record["regularisation"]["not_converged"] == []
    # The poisoned truth is really there: scoring the weak labels against it flips their accuracy.
    acc_a = a.metrics["agreement"]["weak_label_accuracy"]
    assert b.metrics["agreement"]["weak_label_accuracy"] == pytest.approx(1 - acc_a)


@pytest.mark.slow
def test_packaged_models_end_to_end_small(tmp_path: Path) -> None:
    """The default experiment at a small size, on the real packaged models."""
    cfg = W2SConfig(n_train=300, n_test=300, n_bootstrap=200)
    result = run(cfg, out=tmp_path, cache=ActivationCache(root=tmp_path / "cache"))
    m = result.metrics
    # On geo_facts the strong ceiling clearly beats MiniLM even at this size.
    assert m["ceiling"]["accuracy"]["value"] > m["weak"]["accuracy"]["value"] + 0.05
    assert m["pgr"]["accuracy"]["value"] is not None


def test_skipped_empty_texts_are_counted_in_the_run_record(tiny_encoder: Path, tiny_causal: Path,
                                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = load_dataset("geo_facts", limit=400)
    rows = [{"text": "" if i % 50 == 0 else ex.text, "label": ex.label} for i, ex in enumerate(source.examples)]
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = _config(tiny_encoder, tiny_causal, dataset="local", dataset_args={"path": str(path)}, n_train=100,
                  n_test=80)
    result = run(cfg, out=tmp_path / "runs", cache=ActivationCache(root=tmp_path / "cache", device="cpu"))
    assert capsys.readouterr().err.count("have an empty text field; skipped") == 1
    record = json.loads((result.path / "metrics.json").read_text())
    assert record["dataset"]["size"] == 392 and "8 of 400 records" in record["dataset"]["meta"]["skipped"]


def test_one_model_at_two_depths_uses_each_depth(tiny_causal: Path, tmp_path: Path) -> None:
    """Weak = strong network probed at layer 1 vs the last layer: each job reads its own layer's activations."""
    cache = ActivationCache(root=tmp_path / "cache", device="cpu")
    cfg = _config(tiny_causal, tiny_causal, weak_layer=1, strong_layer=-1)
    result = run(cfg, out=tmp_path / "runs", cache=cache)
    predictions = pd.read_parquet(result.path / "predictions.parquet")
    # Weak and ceiling fit the same examples and labels with the same seed: only their features differ.
    assert not np.allclose(predictions["weak_prob"], predictions["ceiling_prob"])
    jobs = [json.loads(p.read_text())["identity"] for p in (tmp_path / "runs" / ".jobs").glob("*/job.json")]
    layers = sorted(j["layer"] for j in jobs if j["kind"] in ("weak", "ceiling"))
    assert layers == [-1, 1]
    # The same depth twice is one set of features: weak and ceiling agree exactly.
    same = run(_config(tiny_causal, tiny_causal, weak_layer=-1, strong_layer=-1), out=tmp_path / "runs", cache=cache)
    again = pd.read_parquet(same.path / "predictions.parquet")
    np.testing.assert_allclose(again["weak_prob"], again["ceiling_prob"])


def test_pure_noise_weak_supervisor_agrees_with_its_noise_matched_baseline(tiny_encoder: Path, tiny_causal: Path,
                                                                         tmp_path: Path) -> None:
    """``noise:0.2`` is the truth with 20% random flips: weak accuracy ~0.8 and, having no systematic
    errors, a student no different from the baseline trained on equally noisy truth."""
    cfg = _config(tiny_encoder, tiny_causal, weak="noise:0.2", n_train=200, n_test=200)
    result = run(cfg, out=tmp_path / "runs", cache=ActivationCache(root=tmp_path / "cache", device="cpu"))
    m = result.metrics
    assert 0.7 <= m["weak"]["accuracy"]["value"] <= 0.9
    assert 0.7 <= m["agreement"]["weak_label_accuracy"] <= 0.9
    student, baseline = m["student"]["accuracy"], m["baseline"]["accuracy"]
    assert baseline["ci_low"] <= student["value"] <= baseline["ci_high"]
    jobs = [json.loads(p.read_text())["identity"] for p in (tmp_path / "runs" / ".jobs").glob("*/job.json")]
    weak = next(j for j in jobs if j["kind"] == "weak")
    assert weak["model"] == "noise:0.2" and weak["weights"] is None  # no model behind it
    assert "regularisation" in result.record and set(result.record["regularisation"]["chosen"]["0"]) == {
        "student", "baseline", "ceiling"}  # pure noise fits nothing

    with pytest.raises(OverseerError, match="noise-cc takes 2 number"):
        W2SConfig(weak="noise-cc:0.3")


def test_model_plus_noise_flips_the_models_labels(tiny_encoder: Path, tiny_causal: Path, tmp_path: Path) -> None:
    cache = ActivationCache(root=tmp_path / "cache", device="cpu")
    clean = run(_config(tiny_encoder, tiny_causal), out=tmp_path / "runs", cache=cache)
    noisy = run(_config(tiny_encoder, tiny_causal, weak=f"{tiny_encoder}+noise-cc:0,1"), out=tmp_path / "runs",
                cache=cache)
    a, b = (pd.read_parquet(r.path / "predictions.parquet") for r in (clean, noisy))
    positive, negative = a["label"] == 1, a["label"] == 0
    np.testing.assert_allclose(b.loc[positive, "weak_prob"], 1 - a.loc[positive, "weak_prob"])  # class 1: all flipped
    np.testing.assert_allclose(b.loc[negative, "weak_prob"], a.loc[negative, "weak_prob"])  # class 0: none
