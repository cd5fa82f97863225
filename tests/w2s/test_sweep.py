import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from overseer.data import load_dataset
from overseer.errors import OverseerError
from overseer.results import list_runs
from overseer.w2s import W2SConfig, run
from overseer.w2s.jobs import JobStore
from overseer.w2s.methods import w2s_method
from overseer.w2s.run import run_texts
from overseer.w2s.sweep import Entry, SweepConfig, sweep

SHARED = {"n_train": 120, "n_test": 100, "n_bootstrap": 100, "head": {"l2_grid": [1.0, 100.0]}, "baseline_draws": 2}


def tiny_sweep(ladder: list[Path], methods: tuple[Entry, ...] = (Entry("xent"), Entry("logconf")),
               seeds: tuple[int, ...] = (0,), **extra) -> SweepConfig:
    return SweepConfig(name="tiny", ladder=tuple(str(m) for m in ladder),
                       datasets=(Entry("geo_facts", {"limit": 600}),), methods=methods, seeds=seeds,
                       shared=dict(SHARED), **extra)


def kinds(keys: list[str]) -> dict[str, int]:
    return {kind: sum(k.startswith(kind + "-") for k in keys) for kind in ("weak", "ceiling", "student", "baseline")}


@pytest.fixture(scope="module")
def three_rungs(tiny_encoder: Path, tiny_causal_right: Path, tiny_causal: Path) -> list[Path]:
    return [tiny_encoder, tiny_causal_right, tiny_causal]


def test_each_weak_and_ceiling_job_is_computed_once_and_reused(three_rungs: list[Path], tmp_path: Path) -> None:
    cfg = tiny_sweep(three_rungs)
    result = sweep(cfg, out=tmp_path, progress=False)
    assert result.ok and len(result.runs) == 6  # 3 pairs x 2 methods
    computed = JobStore(tmp_path).computed()
    # 3 rungs: 2 weak models, 2 ceilings, and one student and one noise-matched baseline per pair and method.
    assert kinds(computed) == {"weak": 2, "ceiling": 2, "student": 6, "baseline": 6}
    assert len(set(computed)) == len(computed)

    listed = list_runs(tmp_path)
    assert sorted(listed["name"]) == sorted(p.name for p in result.runs)  # ordinary runs: `overseer runs` sees them
    summary = json.loads((result.path / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["jobs"] == {"total": 16, "computed": 16, "reused": 0,
                                                                    "failed": 0}

    again = sweep(cfg, out=tmp_path, progress=False)
    assert again.computed == [] and len(again.loaded) == 16 and again.runs == result.runs
    assert JobStore(tmp_path).computed() == computed

    # A plain run of one pair finds the sweep's run directory: same identity, same place.
    plan = cfg.plans()[0]
    single = run(plan.cfg, out=tmp_path)
    assert single.reused and single.path in result.runs


def test_a_sweep_in_rank_one_of_a_multi_process_job_computes_all_and_writes_nothing(
    tiny_encoder: Path, tiny_causal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under torchrun every rank computes every job (they train together); rank 0 alone writes."""
    monkeypatch.setenv("RANK", "1")
    cfg = tiny_sweep([tiny_encoder, tiny_causal], methods=(Entry("xent"),))
    result = sweep(cfg, out=tmp_path / "runs", progress=False)
    assert result.ok and len(result.computed) == 4  # student and baseline read the weak labels from memory
    assert not (tmp_path / "runs").exists() or not any(p.is_file() for p in (tmp_path / "runs").rglob("*"))


def test_a_sweep_embeds_each_models_texts_once(three_rungs: list[Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every job of a model reads the union of the run's splits, embedded once (as `overseer w2s run` does)."""
    import overseer.models._cache as cache_module

    monkeypatch.setenv("OVERSEER_ACTIVATION_CACHE_DIR", str(tmp_path / "cache"))  # nothing cached before
    embedded: dict[str, list[str]] = {}
    real = cache_module.extract_features

    def counting(lm, texts, *args, **kwargs):
        embedded.setdefault(str(lm.spec), []).extend(texts)
        return real(lm, texts, *args, **kwargs)

    monkeypatch.setattr(cache_module, "extract_features", counting)
    cfg = tiny_sweep(three_rungs, methods=(Entry("xent"),), seeds=(0, 1))
    result = sweep(cfg, out=tmp_path / "runs", progress=False)
    assert result.ok and len(result.runs) == 3
    union = run_texts(cfg.plans()[0].cfg, load_dataset("geo_facts", limit=600))
    assert len(embedded) == 3  # the three rungs
    for model, texts in embedded.items():
        assert len(texts) == len(set(texts)), f"{model} embedded {len(texts) - len(set(texts))} texts twice"
        assert sorted(texts) == sorted(union.texts)
    # A plain run of a pair then reads the sweep's activations back whole: no model is loaded.
    embedded.clear()
    single = run(replace(cfg.plans()[0].cfg, seeds=(0, 1)), out=tmp_path / "other-runs")
    assert embedded == {} and single.timings["activation_cache"]["misses"] == 0


def test_the_sweeps_default_dataset_is_the_runs() -> None:
    assert SweepConfig().datasets == (Entry(W2SConfig().dataset),)


def test_run_reuses_the_weak_and_ceiling_jobs_of_another_method(tiny_encoder: Path, tiny_causal: Path,
                                                                 tmp_path: Path) -> None:
    cfg = tiny_sweep([tiny_encoder, tiny_causal], methods=(Entry("xent"),))
    xent = run(cfg.plans()[0].cfg, out=tmp_path)
    logconf_cfg = tiny_sweep([tiny_encoder, tiny_causal], methods=(Entry("logconf"),)).plans()[0].cfg
    logconf = run(logconf_cfg, out=tmp_path)
    assert logconf.timings["jobs"] == {"computed": 2, "loaded": 2}  # only the new student and its baseline
    assert kinds(JobStore(tmp_path).computed()) == {"weak": 1, "ceiling": 1, "student": 2, "baseline": 2}
    a, b = (pd.read_parquet(r.path / "predictions.parquet") for r in (xent, logconf))
    np.testing.assert_array_equal(a["weak_prob"], b["weak_prob"])
    np.testing.assert_array_equal(a["ceiling_prob"], b["ceiling_prob"])


def test_a_failing_job_is_reported_while_the_others_finish(tiny_encoder: Path, tiny_causal: Path,
                                                           tmp_path: Path) -> None:
    @w2s_method("test_exploding")
    def _exploding():
        class Exploding:
            def train_student(self, ctx):
                raise RuntimeError("boom: this method always fails")

        return Exploding()

    cfg = tiny_sweep([tiny_encoder, tiny_causal], methods=(Entry("test_exploding"), Entry("xent")))
    result = sweep(cfg, out=tmp_path, progress=False)
    assert not result.ok
    assert len(result.failures) == 2  # the method's student and its noise-matched baseline
    assert {f["job"].split()[0] for f in result.failures} == {"student", "baseline"}
    assert all("boom: this method always fails" in f["error"] for f in result.failures)
    assert len(result.runs) == 1  # the xent run finished
    summary = json.loads((result.path / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["jobs"]["failed"] == 2 and summary["expected_runs"] == 2


def test_resuming_with_a_changed_config_is_refused(tiny_encoder: Path, tiny_causal: Path, tmp_path: Path) -> None:
    cfg = tiny_sweep([tiny_encoder, tiny_causal], methods=(Entry("xent"),))
    sweep(cfg, out=tmp_path, progress=False)
    changed = tiny_sweep([tiny_encoder, tiny_causal], methods=(Entry("xent"),), seeds=(0, 1))
    with pytest.raises(OverseerError, match=r"different config \(changed: seeds\).*new `name:`"):
        sweep(changed, out=tmp_path, progress=False)
    # Where jobs run is not part of the sweep's identity: more CPUs per task resumes fine.
    assert sweep(tiny_sweep([tiny_encoder, tiny_causal], methods=(Entry("xent"),), task_cpus=2), out=tmp_path,
                 progress=False).ok


def test_per_model_learner_args_reach_each_job_and_the_run_identity(tiny_encoder: Path, tiny_causal: Path) -> None:
    cfg = tiny_sweep([tiny_encoder, tiny_causal], methods=(Entry("xent"),),
                     learner_args_by_model={str(tiny_causal): {"extra": 1}})
    plan = cfg.plans()[0]
    assert plan.weak_learner_args == {} and plan.strong_learner_args == {"extra": 1}
    assert plan.identity["learner_args_by_model"] == {str(tiny_causal): {"extra": 1}}
    with pytest.raises(OverseerError, match="not on the ladder"):
        tiny_sweep([tiny_encoder, tiny_causal], learner_args_by_model={"gpt2": {"lr": 1e-5}})


def test_sweep_config_from_yaml_refuses_unknown_options(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("ladder: [minilm-l6, smollm2-135m]\nmethods: [xent, {name: logconf, args: {aux_coef: 0.25}}]\n"
                    "n_train: 50\n")
    cfg = SweepConfig.from_yaml(path)
    assert cfg.methods[1] == Entry("logconf", {"aux_coef": 0.25}) and cfg.shared == {"n_train": 50}
    path.write_text("ladder: [minilm-l6, smollm2-135m]\nn_trian: 50\n")
    with pytest.raises(OverseerError, match="unknown sweep option 'n_trian'"):
        SweepConfig.from_yaml(path)
    with pytest.raises(OverseerError, match="at least two distinct models"):
        SweepConfig(ladder=("minilm-l6",))


@pytest.mark.parametrize("name", ["offline_ladder", "gpt2_ladder"])
def test_reproduction_configs_load(name: str) -> None:
    cfg = SweepConfig.from_yaml(Path(__file__).resolve().parents[2] / "configs" / f"{name}.yaml")
    if name == "offline_ladder":
        assert len(cfg.pairs()) == 3 and [m.name for m in cfg.methods] == ["xent", "logconf"]
        assert cfg.seeds == (0, 1, 2) and [d.name for d in cfg.datasets] == ["word_valence"]
    else:
        assert len(cfg.plans()) == 6 * 5 * 2  # pairs x datasets x methods
        assert cfg.learner_args("gpt2")["lr"] == 5e-5 and cfg.learner_args("gpt2-xl")["lr"] == 1e-5
        assert cfg.learner_args("gpt2-large")["batch_size"] == 32
        assert cfg.learner_args("gpt2-medium")["standardize"] is False  # the reference code's raw head


@pytest.mark.slow  # starting Ray and its workers takes 20 s to minutes on a busy 2-core machine
def test_two_worker_local_ray_sweep_matches_in_process(tiny_encoder: Path, tiny_causal: Path, tmp_path: Path) -> None:
    import ray  # noqa: F401  (part of the test extra; this test must run, not skip)
    cfg = tiny_sweep([tiny_encoder, tiny_causal], methods=(Entry("xent"),), ray_num_cpus=2)
    on_ray = sweep(cfg, out=tmp_path / "ray", ray="local", progress=False)
    assert on_ray.ok and len(on_ray.runs) == 1
    assert kinds(JobStore(tmp_path / "ray").computed()) == {"weak": 1, "ceiling": 1, "student": 1, "baseline": 1}
    local = sweep(cfg, out=tmp_path / "local", progress=False)
    assert [p.name for p in local.runs] == [p.name for p in on_ray.runs]
    a, b = (pd.read_parquet(r.runs[0] / "predictions.parquet") for r in (on_ray, local))
    for role in ("weak", "student", "ceiling"):
        np.testing.assert_allclose(a[f"{role}_prob"], b[f"{role}_prob"], atol=1e-5)


@pytest.mark.parametrize("name", ["x/../../../elsewhere", "..", "a/b", ".hidden", "", "a b", "x" * 101, 3.5])
def test_a_sweep_name_that_is_not_one_safe_path_component_is_refused(name: object) -> None:
    with pytest.raises(OverseerError, match=r"sweep name .* is not allowed; use letters, digits") as info:
        SweepConfig(name=name, ladder=("minilm-l6", "smollm2-135m"))  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_a_sweep_that_fails_validation_writes_nothing_and_its_name_stays_free(tiny_encoder: Path, tiny_causal: Path,
                                                                              tmp_path: Path) -> None:
    out = tmp_path / "runs"
    bad = SweepConfig(name="tiny", ladder=(str(tiny_encoder), str(tiny_causal)), methods=(Entry("xent"),),
                      datasets=(Entry("no_such_dataset"),), shared=dict(SHARED))
    with pytest.raises(OverseerError, match="unknown dataset 'no_such_dataset'"):
        sweep(bad, out=out, progress=False)
    assert not out.exists() or not any(out.rglob("*"))  # no record, no jobs: nothing claims the name
    fixed = tiny_sweep([tiny_encoder, tiny_causal], methods=(Entry("xent"),))
    assert fixed.name == bad.name
    result = sweep(fixed, out=out, progress=False)
    assert result.ok and len(result.runs) == 1
