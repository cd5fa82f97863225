"""``overseer w2s run``: flags (or a YAML config) → :class:`W2SConfig` → :func:`overseer.w2s.run`."""

from __future__ import annotations

import argparse
from typing import Any

# Flag name → config key; flags left unset keep the config file's (or the default) value.
_FLAG_TO_KEY = {
    "dataset": "dataset", "weak": "weak", "strong": "strong", "weak_layer": "weak_layer",
    "strong_layer": "strong_layer", "weak_pooling": "weak_pooling", "strong_pooling": "strong_pooling",
    "n_train": "n_train", "n_label": "n_label", "n_test": "n_test", "method": "method", "learner": "learner",
    "max_length": "max_length", "batch_size": "batch_size", "n_bootstrap": "n_bootstrap", "device": "device",
    "trust_remote_code": "trust_remote_code",
}
_HEAD_FLAGS = {"hidden_dim": "hidden_dim", "epochs": "epochs", "lr": "lr", "weight_decay": "weight_decay",
               "head_batch_size": "batch_size"}
_DATA_FLAGS = {"data_path": "path", "text_field": "text_field", "pair_field": "pair_field",
               "label_field": "label_field", "chosen_field": "chosen_field", "rejected_field": "rejected_field",
               "id_field": "id_field", "data_limit": "limit"}
_METHOD_FLAGS = {"aux_coef": "aux_coef", "warmup_frac": "warmup_frac", "warmup_schedule": "schedule"}


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer w2s ...``."""
    w2s = sub.add_parser("w2s", help="weak-to-strong generalization (Burns et al. 2023)")
    w2s_sub = w2s.add_subparsers(dest="w2s_command", required=True, metavar="COMMAND")
    p = w2s_sub.add_parser(
        "run",
        help="run one weak-to-strong experiment (defaults: the offline experiment)",
        description="Python equivalent: overseer.w2s.run(W2SConfig(...), out=..., force=...)",
    )
    p.add_argument("--config", help="YAML file of W2SConfig options; flags override it")
    p.add_argument("--dataset", help="registered dataset (see `overseer datasets`); default geo_facts")
    p.add_argument("--weak", help="weak supervisor: ladder rung, short name, hub id, local dir or .gguf")
    p.add_argument("--strong", help="strong student/ceiling model (same forms as --weak)")
    p.add_argument("--weak-layer", type=int, help="layer probed on the weak model (-1 = last)")
    p.add_argument("--strong-layer", type=int, help="layer probed on the strong model (-1 = last)")
    p.add_argument("--weak-pooling", choices=["last", "mean", "first"])
    p.add_argument("--strong-pooling", choices=["last", "mean", "first"])
    p.add_argument("--n-train", type=int, help="weak-train split size (default 2000)")
    p.add_argument("--n-label", type=int, help="weak-label (student) split size (default: --n-train)")
    p.add_argument("--n-test", type=int, help="test split size (default 1000)")
    p.add_argument("--method", help="how the student learns from weak labels: xent (default), logconf, product, "
                   "bootstrap, filter, s2s (docs/methods.md)")
    p.add_argument("--learner", help="how models are trained: probe (default: heads on cached activations) or finetune")
    p.add_argument("--trust-remote-code", action="store_true", default=None,
                   help="allow hub models to run their own code (off unless asked for)")
    p.add_argument("--method-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra method hyperparameter (YAML value), repeatable")
    p.add_argument("--learner-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra learner hyperparameter (YAML value), repeatable")
    p.add_argument("--hard-labels", action="store_true", default=None, help="xent on hardened weak labels")
    p.add_argument("--aux-coef", type=float, help="logconf: final weight of the student's own predictions")
    p.add_argument("--warmup-frac", type=float, help="logconf: share of training over which the weight warms up")
    p.add_argument("--warmup-schedule", choices=["linear", "reference"],
                   help="logconf: paper's linear warm-up, or the public reference code's schedule")
    p.add_argument("--hidden-dim", type=int, help="0 = linear probe (default), >0 = MLP head of that width")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--head-batch-size", type=int)
    p.add_argument("--seeds", type=int, nargs="+", help="one or more seeds (splits and head init)")
    p.add_argument("--data-path", help="local copy of the dataset (a file or the source repo's clone)")
    p.add_argument("--text-field", help="local files: field holding the text")
    p.add_argument("--pair-field", help="local files: field holding the second text")
    p.add_argument("--label-field", help="local files: field holding the 0/1 label")
    p.add_argument("--chosen-field", help="local files: preferred text of a comparison")
    p.add_argument("--rejected-field", help="local files: dispreferred text of a comparison")
    p.add_argument("--id-field", help="local files: field holding a unique id")
    p.add_argument("--data-limit", type=int, help="read at most this many records")
    p.add_argument("--max-length", type=int, help="tokens per text for feature extraction")
    p.add_argument("--batch-size", type=int, help="feature-extraction batch size")
    p.add_argument("--n-bootstrap", type=int, help="bootstrap resamples for intervals")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--out", help="runs directory (default: ./runs)")
    p.add_argument("--force", action="store_true", help="recompute even if this exact run is finished")
    p.set_defaults(func=run_command)
    register_sweep(w2s_sub)
    register_report(w2s_sub)


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`W2SConfig` that the flags (and ``--config`` file) describe."""
    from overseer.w2s import W2SConfig

    data: dict[str, Any] = {}
    if args.config:
        data = W2SConfig.from_yaml(args.config).to_dict()
    for flag, key in _FLAG_TO_KEY.items():
        if getattr(args, flag) is not None:
            data[key] = getattr(args, flag)
    head = dict(data.get("head") or {})
    head.update({key: getattr(args, flag) for flag, key in _HEAD_FLAGS.items() if getattr(args, flag) is not None})
    if head:
        data["head"] = head
    dataset_args = dict(data.get("dataset_args") or {})
    dataset_args.update({key: getattr(args, f) for f, key in _DATA_FLAGS.items() if getattr(args, f) is not None})
    if dataset_args:
        data["dataset_args"] = dataset_args
    method_args = dict(data.get("method_args") or {})
    method_args.update({key: getattr(args, f) for f, key in _METHOD_FLAGS.items() if getattr(args, f) is not None})
    if args.hard_labels:
        method_args["hard"] = True
    method_args.update(_key_values("--method-arg", args.method_arg))
    if method_args:
        data["method_args"] = method_args
    learner_args = {**(data.get("learner_args") or {}), **_key_values("--learner-arg", args.learner_arg)}
    if learner_args:
        data["learner_args"] = learner_args
    if args.seeds:
        data["seeds"] = args.seeds
    return W2SConfig.from_dict(data)


def _key_values(flag: str, items: list[str]) -> dict[str, Any]:
    """Parse repeated ``KEY=VALUE`` flags; values are YAML (numbers, booleans, lists)."""
    import yaml

    from overseer.errors import OverseerError

    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OverseerError(f"{flag} {item!r} is not KEY=VALUE")
        parsed[key] = yaml.safe_load(value)
    return parsed


def run_command(args: argparse.Namespace) -> int:
    """Run the experiment and print its headline numbers and path."""
    from overseer.w2s import run

    cfg = config_from_args(args)
    result = run(cfg, out=args.out, force=args.force)
    if result.reused:
        print("finished run found with this exact config; reusing it (--force to recompute)")
    print(result.summary_line())
    agreement = result.metrics["agreement"]
    print(f"weak-label accuracy {agreement['weak_label_accuracy']:.3f}; "
          f"student agrees with weak on {agreement['student_vs_weak_test']:.1%} of test")
    print(f"run: {result.path}")
    return 0


def register_sweep(w2s_sub: argparse._SubParsersAction) -> None:
    """Add ``overseer w2s sweep``."""
    p = w2s_sub.add_parser(
        "sweep",
        help="every weak < strong pair of a model ladder, over datasets, methods and seeds, with job reuse",
        description="Python equivalent: overseer.w2s.sweep.sweep(SweepConfig.from_yaml(...), out=..., ray=...). "
        "Rerunning a killed sweep resumes it: finished jobs are loaded, never recomputed.",
    )
    p.add_argument("--config", required=True, help="sweep YAML (ladder, datasets, methods, seeds, shared options)")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run each job as a Ray task: alone, on a local Ray instance; with ADDRESS, on that cluster")
    p.add_argument("--out", help="runs directory (default: ./runs)")
    p.set_defaults(func=sweep_command)


def sweep_command(args: argparse.Namespace) -> int:
    """Run or resume the sweep, then print what was computed, reused and failed."""
    from overseer.w2s.sweep import SweepConfig, sweep

    cfg = SweepConfig.from_yaml(args.config)
    result = sweep(cfg, out=args.out, ray=args.ray)
    print(f"sweep {cfg.name}: {len(result.computed)} jobs computed, {len(result.loaded)} reused, "
          f"{len(result.failures)} failed; {len(result.runs)} runs in {result.seconds:.1f}s")
    for failure in result.failures:
        print(f"FAILED {failure['job']}: {failure['error']}")
    print(f"sweep: {result.path}")
    print(f"report: overseer w2s report {result.path}")
    return 0 if result.ok else 1


def register_report(w2s_sub: argparse._SubParsersAction) -> None:
    """Add ``overseer w2s report``."""
    p = w2s_sub.add_parser(
        "report",
        help="plots (PNG) and a Markdown table of w2s runs, sweeps or runs directories",
        description="Python equivalent: overseer.w2s.report.write_report([...], out=...)",
    )
    p.add_argument("runs", nargs="+", metavar="RUNS", help="run directories, sweep directories or runs directories")
    p.add_argument("--out", help="report directory (default: <first argument>/report, or ./w2s-report for a run)")
    p.set_defaults(func=report_command)


def report_command(args: argparse.Namespace) -> int:
    """Write the report and list its files."""
    from overseer.w2s.report import write_report

    files = write_report(args.runs, out=args.out)
    for path in files:
        print(path)
    return 0
