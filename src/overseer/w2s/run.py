"""Run one weak-to-strong experiment end to end, reading top to bottom like a script.

1. Load the dataset and draw, for each seed, weak-train / weak-label / test splits.
2. Weak job: the learner (default: a probe on cached activations) fits the weak model on
   weak-train ground truth; it labels the weak-label split with soft labels.
3. Student job: the chosen method trains the strong model from those weak labels only.
4. Ceiling job: the strong model fitted on weak-train ground truth.
   Baseline job: the noise-matched student, the same method trained on the student split's truth
   flipped at the weak labels' own error rate per class (:mod:`overseer.w2s.synthetic`).
   Each seed's baseline is trained on several independent flip draws; runs report their mean and spread.
   Every probe picks its L2 penalty by cross-validation on its own training targets and is solved
   to convergence (a linear head: full-batch L-BFGS).
   Each job is content-hashed and kept in the runs directory's job store (``overseer.w2s.jobs``),
   so any run or sweep that needs a finished job loads it instead of training it again.
5. Score all four on the test split: accuracy, AUROC, PGR (and the baseline's), with bootstrap intervals.
6. Publish the run directory (config, versions, metrics, predictions, plot) through the results
   layer's run lifecycle (:func:`overseer.results.start_run`), which also finds a finished run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from overseer._progress import progress as show_progress
from overseer.data import BinaryDataset, load_dataset
from overseer.models import ActivationCache, check_model
from overseer.results import Estimate, RunResult, RunWriter, start_run, summary_formatter
from overseer.w2s.checks import check_run
from overseer.w2s.config import W2SConfig
from overseer.w2s.jobs import Job, JobStore
from overseer.w2s.learners import Learner, learner_class
from overseer.w2s.methods import StudentContext, make_method
from overseer.w2s.metrics import w2s_metrics
from overseer.w2s.plots import plot_accuracies
from overseer.w2s.splits import LabeledSplit, UnlabeledSplit, W2SSplits, w2s_splits
from overseer.w2s.synthetic import (
    TEST_STREAM,
    WEAK_LABEL_STREAM,
    baseline_stream,
    class_error_rates,
    flip_at_random,
    noise_matched_labels,
    stream,
)

ROLES = ("weak", "student", "baseline", "ceiling")
"""The models a run scores, in display order (``baseline``: the noise-matched student)."""


W2SResult = RunResult
"""What :func:`run` returns: the results layer's one result type (``metrics`` is the metrics.json section)."""


@summary_formatter("w2s")
def summary_line(result: RunResult) -> str:
    """Weak, student, noise-matched baseline and ceiling accuracy with 95% intervals, and both PGRs."""
    parts = []
    for role in ROLES:
        if role not in result.metrics:  # runs written before the baseline existed
            continue
        parts.append(f"{role} {Estimate.from_dict(result.metrics[role]['accuracy']):.3f}{_draws(result, role)}")
    for name, label in (("pgr", "PGR"), ("baseline_pgr", "baseline PGR")):
        if name in result.metrics:
            parts.append(f"{label} {Estimate.from_dict(result.metrics[name]['accuracy']):.3fr}{_draws(result, name)}")
    return "accuracy: " + "; ".join(parts)


def _draws(result: RunResult, name: str) -> str:
    """`` (5 flip draws: sd 0.012, 0.831-0.862)``: the spread of the baseline over its flip draws, if it has several."""
    draws = result.metrics[name].get("draws")
    if not draws or draws["n"] < 2 or draws["accuracy"]["sd"] is None:
        return ""
    spread = draws["accuracy"]
    return f" ({draws['n']} flip draws: sd {spread['sd']:.3f}, {spread['min']:.3f} to {spread['max']:.3f})"


def learner_names(cfg: W2SConfig) -> dict[str, str | None]:
    """What the learner calls the weak and strong models (``weak``/``strong`` -> name; weak None: pure noise).

    Usually the model names. When weak and strong are one network probed at different layers or
    poolings, the weak one is the view ``<model>#weak``, so each keeps its own layer and pooling.
    """
    weak, strong = cfg.weak_model, cfg.strong
    if weak == strong:
        resolved = cfg.identity()
        if (resolved["weak_layer"], resolved["weak_pooling"]) != (resolved["strong_layer"], resolved["strong_pooling"]):
            weak = f"{weak}#weak"
    return {"weak": weak, "strong": strong}


def make_learner(cfg: W2SConfig, pairing: str, cache: ActivationCache,
                 progress: Callable[[int], None] | None) -> Learner:
    """The learner ``cfg`` asks for, set up with its layers, poolings and head settings."""
    cls = learner_class(cfg.learner)
    names = learner_names(cfg)
    weak, strong = names["weak"], names["strong"]
    layers = {strong: cfg.strong_layer}
    poolings = {strong: cfg.strong_pooling}
    aliases = {}
    if weak is not None:
        layers[weak], poolings[weak] = cfg.weak_layer, cfg.weak_pooling
        if weak != cfg.weak_model:
            aliases[weak] = cfg.weak_model
    return cls(
        cache=cache,
        layers=layers,
        poolings=poolings,
        pairing=pairing,
        max_length=cfg.max_length,
        head=dataclasses.asdict(cfg.head),
        progress=progress,
        aliases=aliases,
        **cfg.learner_args,
    )


def seed_jobs(cfg: W2SConfig, seed: int, dataset_fingerprint: str, weak_args: dict[str, Any] | None = None,
              strong_args: dict[str, Any] | None = None) -> tuple[Job, Job, Job, Job]:
    """The weak, ceiling, student and baseline jobs of one seed (learner args default to ``cfg.learner_args``)."""
    weak_args = cfg.learner_args if weak_args is None else weak_args
    strong_args = cfg.learner_args if strong_args is None else strong_args
    weak = Job("weak", cfg, seed, dataset_fingerprint, weak_args)
    ceiling = Job("ceiling", cfg, seed, dataset_fingerprint, strong_args)
    student = Job("student", cfg, seed, dataset_fingerprint, strong_args, weak_key=weak.key)
    baseline = Job("baseline", cfg, seed, dataset_fingerprint, strong_args, weak_key=weak.key)
    return weak, ceiling, student, baseline


def compute_job(job: Job, dataset: BinaryDataset, learner: Learner, weak_labels: np.ndarray | None = None
                ) -> dict[str, np.ndarray]:
    """Train what ``job`` asks for; return its P(class 1) on the student split and the test split.

    Weak and ceiling models fit weak-train ground truth. The student sees its split only as an
    :class:`UnlabeledSplit` with ``weak_labels`` (the weak job's ``weak_label`` output): never its truth.
    The noise-matched baseline reads that truth, in its own job (:mod:`overseer.w2s.synthetic`), and
    so does a synthetic weak supervisor, which is label noise on the truth by definition.
    Outputs also hold ``l2`` and ``converged`` for probe heads (:func:`_with_choice`). A baseline job
    trains one student per flip draw (``cfg.baseline_draws``, :func:`_stack_draws`).
    """
    cfg = job.cfg
    splits: W2SSplits = w2s_splits(dataset, cfg.n_train, cfg.n_test, seed=job.seed, n_label=cfg.n_label)
    train, label, test = splits.weak_train, splits.weak_label, splits.test
    names = learner_names(cfg)
    if job.kind == "weak":
        return _weak_outputs(cfg, job.seed, splits, learner, names["weak"])
    if job.kind in ("student", "baseline"):
        if weak_labels is None:
            raise ValueError(f"a {job.kind} job needs its weak job's labels")
        method = make_method(cfg.method, **cfg.method_args)

        def student(targets: np.ndarray) -> dict[str, np.ndarray]:
            model = method.train_student(StudentContext(names["strong"], names["weak"] or cfg.weak, label, targets,
                                                        train, learner, job.seed))
            return _with_choice({"weak_label": model.predict_proba(label), "test": model.predict_proba(test)}, model)

        if job.kind == "student":
            return student(weak_labels)
        truth = splits.weak_label_truth_for_baseline()
        rates = class_error_rates(weak_labels, truth)
        draws = [student(noise_matched_labels(truth, rates, baseline_stream(job.seed, draw)))
                 for draw in range(cfg.baseline_draws)]
        return _stack_draws(draws)
    model = learner.fit(names["strong"], train, train.labels, seed=job.seed)
    return _with_choice({"weak_label": model.predict_proba(label), "test": model.predict_proba(test)}, model)


def _weak_outputs(cfg: W2SConfig, seed: int, splits: W2SSplits, learner: Learner, name: str | None
                  ) -> dict[str, np.ndarray]:
    """The weak supervisor's P(class 1) on the student and test splits: a model's, noise on the truth, or both."""
    supervisor = cfg.weak_supervisor()
    label, test = splits.weak_label, splits.test
    if name is None:  # pure noise: start from the truth itself
        outputs = {"weak_label": splits.weak_label_truth_for_synthetic_weak().astype(np.float64),
                   "test": test.labels.astype(np.float64)}
    else:
        model = learner.fit(name, splits.weak_train, splits.weak_train.labels, seed=seed)
        outputs = _with_choice({"weak_label": model.predict_proba(label), "test": model.predict_proba(test)}, model)
    if supervisor.flip is not None:
        truths = {"weak_label": splits.weak_label_truth_for_synthetic_weak(), "test": test.labels}
        for split, which in (("weak_label", WEAK_LABEL_STREAM), ("test", TEST_STREAM)):
            outputs[split] = flip_at_random(outputs[split], truths[split], supervisor.flip, stream(seed, which))
    return outputs


def _with_choice(outputs: dict[str, np.ndarray], model: Any) -> dict[str, np.ndarray]:
    """Add how ``model``'s head was regularised (its L2 penalty; 1/0 for converged, NaN: no check) to its outputs."""
    chosen = getattr(model, "chosen", None)
    if chosen is not None:
        outputs["l2"] = np.array([chosen["l2"]], dtype=np.float64)
        converged = chosen.get("converged")
        outputs["converged"] = np.array([np.nan if converged is None else float(converged)])
    return outputs


def _stack_draws(draws: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """A baseline job's outputs: draw 0 as ``weak_label``/``test`` (as one draw always was), every draw stacked.

    ``weak_label_draws`` and ``test_draws`` are (draws, examples); ``l2`` and ``converged`` hold one
    value per draw.
    """
    outputs = {"weak_label": draws[0]["weak_label"], "test": draws[0]["test"],
               "weak_label_draws": np.stack([d["weak_label"] for d in draws]),
               "test_draws": np.stack([d["test"] for d in draws])}
    for name in ("l2", "converged"):
        if all(name in d for d in draws):
            outputs[name] = np.concatenate([d[name] for d in draws])
    return outputs


def _outputs(store: JobStore, job: Job, force: bool, compute: Callable[[], dict[str, np.ndarray]],
             counts: dict[str, int], finished: list[tuple[Job, dict[str, np.ndarray], float]]) -> dict[str, np.ndarray]:
    """Load a finished job from the store, or compute it and queue it for the store."""
    if not force and store.has(job.key):
        counts["loaded"] += 1
        return store.load(job.key)
    started = time.perf_counter()
    outputs = compute()
    finished.append((job, outputs, time.perf_counter() - started))
    counts["computed"] += 1
    return outputs


def _run_seed(cfg: W2SConfig, dataset: BinaryDataset, seed: int, learner: Learner, store: JobStore, force: bool,
              counts: dict[str, int], finished: list[tuple[Job, dict[str, np.ndarray], float]]
              ) -> dict[str, dict[str, np.ndarray]]:
    """The outputs of one seed's jobs, keyed by role (loaded when finished before, computed otherwise)."""
    weak, ceiling, student, baseline = seed_jobs(cfg, seed, dataset.fingerprint())
    weak_out = _outputs(store, weak, force, lambda: compute_job(weak, dataset, learner), counts, finished)
    # The weak labels are all the student learns from.
    student_out = _outputs(store, student, force,
                           lambda: compute_job(student, dataset, learner, weak_out["weak_label"]), counts, finished)
    baseline_out = _outputs(store, baseline, force,
                            lambda: compute_job(baseline, dataset, learner, weak_out["weak_label"]), counts, finished)
    ceiling_out = _outputs(store, ceiling, force, lambda: compute_job(ceiling, dataset, learner), counts, finished)
    return {"weak": weak_out, "student": student_out, "baseline": baseline_out, "ceiling": ceiling_out}


def regularisation(cfg: W2SConfig, outputs_by_seed: dict[int, dict[str, dict[str, np.ndarray]]]) -> dict[str, Any]:
    """How each model's head was regularised, and which fits stopped short of their solver's tolerance.

    With a grid: the grid, the folds and the L2 penalty each seed's fit chose (a list over flip draws
    for the baseline).
    """
    if cfg.learner != "probe":
        return {"learner": cfg.learner, "learner_args": cfg.learner_args}

    def value(values: np.ndarray) -> float | list[float]:
        return float(values[0]) if len(values) == 1 else [float(v) for v in values]

    chosen = {str(seed): {role: value(out["l2"]) for role, out in outputs.items() if "l2" in out}
              for seed, outputs in outputs_by_seed.items()}
    not_converged = sorted(f"seed {seed} {role}" for seed, outputs in outputs_by_seed.items()
                           for role, out in outputs.items() if "converged" in out and np.any(out["converged"] == 0))
    solver = ("full-batch L-BFGS to convergence (float64)" if not cfg.head.hidden_dim
              else f"minibatch Adam, {cfg.head.epochs} epochs")
    common = {"penalty": "mean loss + l2 / (2 n) * sum of squared weights (scikit-learn C = 1 / l2)",
              "solver": solver, "not_converged": not_converged}
    if not cfg.head.l2_grid:
        return {"l2": cfg.head.l2, "chosen_by": "fixed", **common}
    return {"chosen_by": f"{cfg.head.cv_folds}-fold cross-validation on each fit's own training targets",
            "grid": list(cfg.head.l2_grid), "chosen": chosen, **common}


def seed_predictions(cfg: W2SConfig, dataset: BinaryDataset, seed: int,
                     outputs: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """The prediction rows of one seed from its jobs' outputs (keyed by role, :data:`ROLES`)."""
    splits: W2SSplits = w2s_splits(dataset, cfg.n_train, cfg.n_test, seed=seed, n_label=cfg.n_label)
    test_frame = _predictions(seed, splits.test, _probabilities(outputs, "test"))
    # Only now, with every model trained, is the student split's ground truth read: to score weak labels.
    label = splits.weak_label
    truth = LabeledSplit(label.name, label.ids, label.texts, label.text_pairs, splits.weak_label_truth_for_metrics())
    label_frame = _predictions(seed, truth, _probabilities(outputs, "weak_label"))
    return pd.concat([test_frame, label_frame], ignore_index=True)


def _probabilities(outputs: dict[str, dict[str, np.ndarray]], split: str) -> dict[str, np.ndarray]:
    """Column name -> P(class 1) on ``split``: ``<role>_prob`` per role, later flip draws ``baseline_prob_draw<k>``.

    ``baseline_prob`` is the baseline's draw 0.
    """
    probs = {f"{role}_prob": outputs[role][split] for role in ROLES}
    draws = outputs["baseline"].get(f"{split}_draws")
    if draws is not None:
        probs.update({f"baseline_prob_draw{k}": draws[k] for k in range(1, len(draws))})
    return probs


def _predictions(seed: int, split: LabeledSplit, probs: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame({
        "seed": seed,
        "split": split.name,
        "id": list(split.ids),
        "label": split.labels,
        **{column: np.asarray(p, dtype=np.float64) for column, p in probs.items()},
    })


def start(cfg: W2SConfig, identity: dict[str, Any], out: str | Path | None, force: bool = False) -> RunWriter:
    """Start the run of ``identity`` (see :func:`overseer.results.start_run`); shared by runs and sweeps."""
    return start_run("w2s", identity, out, force=force, resolved={**cfg.to_dict(), **identity})


def texts_to_embed(cfg: W2SConfig, dataset: BinaryDataset, store: JobStore, force: bool = False
                   ) -> dict[str, UnlabeledSplit]:
    """For each model the probe learner will read, every text of the run's splits, as one split.

    A model with any unfinished job gets the texts of all three splits of every seed, each text
    once, in the order first met; the run embeds them in one pass (:meth:`ProbeLearner.prefetch`),
    so a text shared by several seeds' splits costs one forward pass. The union does not depend on
    which jobs are finished, so it is one activation-cache entry that every run with the same
    dataset, sizes and seeds reads back whole. Empty for other learners and for pure-noise weak labels.
    """
    if cfg.learner != "probe":
        return {}
    names = learner_names(cfg)
    pending = {names["weak"] if job.kind == "weak" else names["strong"]
               for seed in cfg.seeds for job in seed_jobs(cfg, seed, dataset.fingerprint())
               if force or not store.has(job.key)}
    union = run_texts(cfg, dataset)
    # weak first, as the jobs run; pure-noise weak labels (name None) read no activations
    return {name: union for name in (names["weak"], names["strong"]) if name is not None and name in pending}


def run_texts(cfg: W2SConfig, dataset: BinaryDataset) -> UnlabeledSplit:
    """Every text of the three splits of every seed of ``cfg``, each once, in the order first met.

    It depends only on the dataset, the split sizes and the seeds, so every run and sweep job that
    shares them embeds this one split (one activation-cache entry per model and view).
    """
    rows: dict[tuple[str, str | None], str] = {}
    for seed in cfg.seeds:
        splits = w2s_splits(dataset, cfg.n_train, cfg.n_test, seed=seed, n_label=cfg.n_label)
        for split in (splits.weak_train, splits.weak_label, splits.test):
            pairs = split.text_pairs or (None,) * len(split.texts)
            for example_id, text, pair in zip(split.ids, split.texts, pairs, strict=True):
                rows.setdefault((text, pair), example_id)
    keys = list(rows)
    has_pairs = any(pair is not None for _, pair in keys)
    return UnlabeledSplit("all", tuple(rows.values()), tuple(t for t, _ in keys),
                          tuple(p or "" for _, p in keys) if has_pairs else None)


def run(cfg: W2SConfig | None = None, out: str | Path | None = None, force: bool = False,
        cache: ActivationCache | None = None, progress: bool = True) -> RunResult:
    """Run (or reuse) the weak-to-strong experiment described by ``cfg``.

    Names and paths (dataset, data path, models, runs directory) are checked first, before
    anything is loaded or written (:func:`overseer.w2s.checks.check_run`).

    Args:
        cfg: the experiment; default: the offline default experiment.
        out: runs directory (default ``runs/`` in the working directory).
        force: recompute even if a finished run with this config exists (activations are still
            reused from the cache).
        cache: activation cache to use (default: the user cache directory).
        progress: show the feature extraction's progress (texts done of the run's total, rate,
            ETA): a bar on a terminal, a line every 30 s otherwise (see :mod:`overseer._progress`).
    """
    cfg = cfg or W2SConfig()
    check_run(cfg, out)
    writer = start(cfg, cfg.identity(), out, force)
    if writer.existing:
        return writer.existing

    started = time.perf_counter()
    for model in (cfg.weak_model, cfg.strong):
        if model is not None:
            check_model(model, cfg.device)  # an unknown name or device fails now, not after the dataset is loaded
    dataset = load_dataset(cfg.dataset, **cfg.dataset_args)
    cache = cache or ActivationCache(device=cfg.device, batch_size=cfg.batch_size,
                                     trust_remote_code=cfg.trust_remote_code)
    store = JobStore(out)
    counts = {"computed": 0, "loaded": 0}
    finished: list[tuple[Job, dict[str, np.ndarray], float]] = []
    frames = []
    outputs_by_seed: dict[int, dict[str, dict[str, np.ndarray]]] = {}
    to_embed = texts_to_embed(cfg, dataset, store, force)
    sides = 2 if dataset.pairing == "compare" else 1
    total = sum(len(split) for split in to_embed.values()) * sides if cfg.learner == "probe" else None
    with show_progress(total, "activations", "texts", enabled=progress) as bar:
        learner = make_learner(cfg, dataset.pairing, cache, progress=bar.update)
        for name, split in to_embed.items():
            bar.set_description(f"activations of {name}")
            learner.prefetch(name, split)
        bar.set_description("activations")  # the bar's last line: every text, embedded once per model
        for seed in cfg.seeds:
            outputs_by_seed[seed] = _run_seed(cfg, dataset, seed, learner, store, force, counts, finished)
            frames.append(seed_predictions(cfg, dataset, seed, outputs_by_seed[seed]))
    timing = {"seconds": round(time.perf_counter() - started, 2), "activation_cache": dict(cache.stats),
              "jobs": counts}
    result = write_run(writer, cfg, dataset, pd.concat(frames, ignore_index=True), timing,
                       regularisation(cfg, outputs_by_seed))
    # A single run is one unit: its jobs join the store only once it is published, so an
    # interrupted run leaves nothing behind (a sweep, by contrast, stores each job as it ends).
    for job, outputs, seconds in finished:
        store.save(job, outputs, seconds)
    return result


def write_run(writer: RunWriter, cfg: W2SConfig, dataset: BinaryDataset, predictions: pd.DataFrame,
              timing: dict[str, Any], regularised: dict[str, Any] | None = None) -> RunResult:
    """Score ``predictions`` and publish them through ``writer`` (from :func:`start`); shared by runs and sweeps."""
    import matplotlib.pyplot as plt  # after overseer.w2s.plots chose the Agg backend

    scores = w2s_metrics(predictions, n_resamples=cfg.n_bootstrap)
    metrics = scores.pop("metrics")
    headline = {
        "dataset": cfg.dataset,
        "weak": cfg.weak,
        "strong": cfg.strong,
        "method": cfg.method,
        "seeds": len(cfg.seeds),
        **{f"{role}_acc": metrics[role]["accuracy"]["value"] for role in ROLES if role in metrics},
        **{name: metrics[name]["accuracy"]["value"] for name in ("pgr", "baseline_pgr") if name in metrics},
    }
    dataset_info = {"name": dataset.name, "fingerprint": dataset.fingerprint(), "size": len(dataset),
                    "pairing": dataset.pairing, **({"meta": dict(dataset.meta)} if dataset.meta else {})}
    with writer:
        predictions.to_parquet(writer.file("predictions.parquet"), index=False)
        from overseer.results.plots import model_label, save_figure

        fig = plot_accuracies(metrics, title=f"{cfg.dataset}: {model_label(cfg.weak)} → {model_label(cfg.strong)} "
                              f"({cfg.method})", n_test=scores["n_test"], n_seeds=scores["n_seeds"])
        save_figure(fig, writer.file("accuracy.png").parent, "accuracy")  # accuracy.png (300 dpi) and accuracy.pdf
        plt.close(fig)
        extra = {"regularisation": regularised} if regularised is not None else {}
        writer.finish(metrics, timings=timing, summary=headline, dataset=dataset_info, **extra, **scores)
    return writer.result
